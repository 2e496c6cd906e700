// Command strata migrates, checkpoints, inspects and benchmarks strata
// stores, and runs a demo stream processor.
//
//	strata demo                      # the stream processor in miniature
//	strata --config config.toml keys # the store (and checkpoints) of a config file
//	strata <command> --help          # every command documents itself
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "strata:", err)
		os.Exit(1)
	}
}

// newRoot builds the command tree; tests call it with their own arguments.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "State for stream processors: stores, tiers, checkpoints, locks",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String(configFlag, "", "config file (config.toml): the store, and the checkpoint settings of demo and checkpoint, come from it instead of --store and --dir")
	root.AddCommand(newDemo(), newGet(), newPut(), newDel(), newKeys(), newTTL(), newStats(), newMigrate(), newBench(), newCheckpoint())
	return root
}
