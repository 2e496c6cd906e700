// Command strata migrates, checkpoints, inspects and benchmarks strata
// stores, and runs a demo stream processor.
//
//	strata demo                              # the stream processor in miniature
//	strata get --store redis://host:6379/0 k # a key (or STRATA_STORE, or --config)
//	strata --config config.toml keys         # the store (and checkpoints) of a config file
//	strata <command> --help                  # every command documents itself
//
// Exit codes: 0 success, 1 failure, 2 usage (bad flags, arguments,
// configuration or input; nothing was done), 3 not found, 4 unavailable
// (the store could not be reached, or did not answer within --timeout),
// 5 indeterminate (a write may or may not have been applied), 130
// interrupted (Ctrl-C, SIGTERM).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

func main() {
	// go-redis logs its connection troubles itself, on stderr, ahead of
	// the error the command reports: send them to slog, at debug level,
	// shown with --verbose.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &logLevel})))
	goredis.SetLogger(redisLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, newRoot())
	stop()
	os.Exit(code)
}

// Global flags.
const (
	configFlag  = "config"
	timeoutFlag = "timeout"
	verboseFlag = "verbose"
)

// dataTimeout is the --timeout of the data commands (get, put, del, keys,
// ttl, stats) when none is given: long enough for a server that answers,
// short enough that one that does not fails fast.
const dataTimeout = 5 * time.Second

// dataCommand is the annotation that marks a data command.
const dataCommand = "strata.data"

// logLevel is the level of the program's slog handler: debug with
// --verbose, else info.
var logLevel slog.LevelVar

const rootLong = `strata moves, checkpoints, inspects and benchmarks the stores of stream
processors (memory, bbolt, Pebble, Redis and Redis Cluster), and runs a
demo of a stream processor on them.

The commands that act on a store take it as a URL: --store URL, else the
STRATA_STORE environment variable, else the store of the global --config
file (config.toml). There is no default store.

Exit codes:
  0    success
  1    failure (corrupt data, a verification that found differences, ...)
  2    usage: bad flags, arguments, configuration or input; nothing was done
  3    not found: a key, a checkpoint, a checkpoint directory
  4    unavailable: the store could not be reached, or did not answer within
       --timeout
  5    indeterminate: a write may or may not have been applied
  130  interrupted (Ctrl-C, SIGTERM)

The data commands (get, put, del, keys, ttl, stats) give up after 5s;
--timeout sets the limit of any command.`

// newRoot builds the command tree; tests call it with their own arguments.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "State for stream processors: stores, tiers, checkpoints, locks",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.String(configFlag, "", "config file (config.toml): the store, and the checkpoint settings of demo and checkpoint, come from it instead of --store and --dir")
	pf.Duration(timeoutFlag, 0, fmt.Sprintf("give up after this long (default %v for get, put, del, keys, ttl and stats, none for the other commands; 0: none)", dataTimeout))
	pf.BoolP(verboseFlag, "v", false, "log debug lines to stderr, go-redis's own among them")
	root.AddCommand(newDemo(), newGet(), newPut(), newDel(), newKeys(), newTTL(), newStats(), newMigrate(), newBench(), newCheckpoint(), newVersion())
	wrapRun(root)
	return root
}

// wrapRun makes every command of the tree run under its --timeout and
// --verbose, and marks its errors as the command's own (see ranError).
func wrapRun(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		wrapRun(c)
	}
	run := cmd.RunE
	if run == nil {
		return
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if v, _ := cmd.Flags().GetBool(verboseFlag); v {
			logLevel.Set(slog.LevelDebug)
		}
		timeout, _ := cmd.Flags().GetDuration(timeoutFlag)
		if !cmd.Flags().Changed(timeoutFlag) && cmd.Annotations[dataCommand] != "" {
			timeout = dataTimeout
		}
		parent := cmd.Context()
		ctx, cancel := parent, context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(parent, timeout)
		}
		defer cancel()
		cmd.SetContext(ctx)
		err := run(cmd, args)
		if err == nil {
			return nil
		}
		// The store's socket deadline, set from ctx's, may fire a moment
		// before ctx's own timer does.
		if timeout > 0 && parent.Err() == nil && (ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
			err = fmt.Errorf("no answer within --timeout %v: %w", timeout, err)
		}
		return &ranError{err}
	}
}

// redisLogger sends go-redis's log lines to slog at debug level.
type redisLogger struct{}

// Printf logs one line of go-redis's.
func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().Log(ctx, slog.LevelDebug, fmt.Sprintf(format, v...), "from", "go-redis")
}
