package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
)

// checkpointFlags are the flags shared by the checkpoint subcommands.
type checkpointFlags struct {
	storeFlags
	dir string
}

func (f *checkpointFlags) register(cmd *cobra.Command, withStore bool) {
	if withStore {
		f.storeFlags.register(cmd)
	}
	cmd.Flags().StringVar(&f.dir, "dir", envOr("CHECKPOINT_DIR", "checkpoints"), "checkpoint directory (env CHECKPOINT_DIR; or the global --config)")
}

// options returns the Coordinator's options: those of the --config file's
// [checkpoint] table (directory, retention, compression, intervals; its
// enabled key concerns a running process, not these commands), else --dir.
func (f *checkpointFlags) options(cmd *cobra.Command) (*checkpoint.Options, error) {
	if err := exclusive(cmd, "dir"); err != nil {
		return nil, err
	}
	cfg := f.cfg // read already if the command opened its store
	if cfg == nil {
		var err error
		if cfg, err = loadConfig(cmd); err != nil {
			return nil, err
		}
	}
	if cfg == nil {
		return &checkpoint.Options{Dir: f.dir}, nil
	}
	o := checkpoint.OptionsFromConfig(cfg.Checkpoint)
	if o.Dir == "" {
		return nil, fmt.Errorf("%w: --%s %s: checkpoint.checkpoint_dir (or CHECKPOINT_DIR) is required", strata.ErrInvalidConfig, configFlag, configPath(cmd))
	}
	return &o, nil
}

// coordinator opens a Coordinator over the directory, for s (nil for the
// commands that only read files).
func (f *checkpointFlags) coordinator(cmd *cobra.Command, s strata.Store) (*checkpoint.Coordinator, error) {
	o, err := f.options(cmd)
	if err != nil {
		return nil, err
	}
	return checkpoint.New(s, o)
}

// existing returns the options of the commands that read checkpoints: for
// them a directory that does not exist is an error matching
// strata.ErrNotFound, not one to create (as checkpoint.New would).
func (f *checkpointFlags) existing(cmd *cobra.Command) (*checkpoint.Options, error) {
	o, err := f.options(cmd)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(o.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint directory %s: %w", o.Dir, strata.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("checkpoint directory: %w", err)
	}
	return o, nil
}

// reader opens a Coordinator over an existing directory, without a store.
func (f *checkpointFlags) reader(cmd *cobra.Command) (*checkpoint.Coordinator, error) {
	o, err := f.existing(cmd)
	if err != nil {
		return nil, err
	}
	return checkpoint.New(nil, o)
}

func newCheckpoint() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Create, list, verify, inspect and restore checkpoints of a store",
		Long: `checkpoint creates, lists, verifies, inspects and restores the checkpoints
of a store in a directory: --store and --dir, or the store and the
[checkpoint] table (directory, retention, compression) of the global
--config file, whatever its enabled key says.`,
	}
	cmd.AddCommand(newCheckpointCreate(), newCheckpointList(), newCheckpointVerify(), newCheckpointRestore(), newCheckpointInspect())
	return cmd
}

func newCheckpointCreate() *cobra.Command {
	var f checkpointFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Write a checkpoint of --store into --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &f.storeFlags, func(ctx context.Context, s strata.Store) error {
				c, err := f.coordinator(cmd, s)
				if err != nil {
					return err
				}
				start := time.Now()
				m, err := c.Checkpoint(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created %s: %d entries, %s (%s raw) in %v\n",
					m.ID, m.Entries, bytesHuman(m.CompressedBytes), bytesHuman(m.RawBytes), time.Since(start).Round(time.Millisecond))
				return nil
			})
		},
	}
	f.register(cmd, true)
	return cmd
}

func newCheckpointList() *cobra.Command {
	var f checkpointFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the checkpoints in --dir, newest last (without verifying them)",
		Long: `list prints the checkpoints in --dir, oldest first, from their manifests,
without verifying them (verify does); --json prints a JSON array of objects
{"id", "path", "size_bytes", "manifest", "error"}. A directory that does
not exist fails with exit code 3.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.reader(cmd)
			if err != nil {
				return err
			}
			infos, err := c.List()
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), listJSON(infos))
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tCREATED\tENTRIES\tSIZE\tSOURCE\tSTATE")
			for _, in := range infos {
				state := "ok (unverified)"
				if in.Err != nil {
					state = "damaged: " + in.Err.Error()
				}
				m := in.Manifest
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", in.ID, m.Created.Format(time.RFC3339), m.Entries, bytesHuman(in.Size), m.Source, state)
			}
			return w.Flush()
		},
	}
	f.register(cmd, false)
	f.registerJSON(cmd)
	return cmd
}

func newCheckpointVerify() *cobra.Command {
	var f checkpointFlags
	cmd := &cobra.Command{
		Use:   "verify [ID...]",
		Short: "Verify the checksums and structure of checkpoints (all by default)",
		Long: `verify reads checkpoints whole, checking their structure, counts and both
SHA-256 sums: those named, or every one in --dir. It fails when one does
not verify (exit code 1), and when the directory, a named checkpoint, or
any checkpoint at all is missing (exit code 3).`,
		RunE: func(cmd *cobra.Command, ids []string) error {
			c, err := f.reader(cmd)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				infos, err := c.List()
				if err != nil {
					return err
				}
				for _, in := range infos {
					ids = append(ids, in.ID)
				}
				if len(ids) == 0 {
					return fmt.Errorf("%w in %s", checkpoint.ErrNoCheckpoint, c.Dir())
				}
			}
			var bad []error
			for _, id := range ids {
				m, err := c.Verify(cmd.Context(), id)
				if err != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: FAILED: %v\n", id, err)
					bad = append(bad, fmt.Errorf("%s: %w", id, err))
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d entries, %s\n", id, m.Entries, m.Checksum)
			}
			if len(bad) > 0 {
				return fmt.Errorf("%d of %d checkpoints failed verification: %w", len(bad), len(ids), errors.Join(bad...))
			}
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func newCheckpointRestore() *cobra.Command {
	var (
		f checkpointFlags
		r restoreFlags
	)
	cmd := &cobra.Command{
		Use:   "restore [ID]",
		Short: "Restore a checkpoint into --store (the newest valid one by default)",
		Long: `restore verifies the checkpoint, then writes its entries into --store with
their remaining TTLs (expired ones are skipped). Without an ID it restores
the newest valid checkpoint and names the damaged newer ones it skipped.

By default the store is cleared first (replace): every key it lists is
deleted, which for a Redis URL without a prefix is the whole database.
Over a store that holds keys, restore asks first when standard input is
a terminal, and otherwise refuses unless --yes is given. --merge keeps
other keys instead (no confirmation needed). --dry-run verifies the
checkpoint and prints what would be cleared and restored, writing nothing.

A checkpoint of a job's cut is refused over a store whose fence holds a
newer token (a newer leader has committed since); --force restores it
anyway, rolling that state back.

On a terminal, stderr shows a progress bar (entries of the total,
percentage, rate, and the time left as [elapsed:left]). A restore stopped
part-way (Ctrl-C, an error) leaves the store partly restored and says how
to finish: restoring the same checkpoint again is idempotent.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &f.storeFlags, func(ctx context.Context, s strata.Store) error {
				opts, err := f.existing(cmd)
				if err != nil {
					return err
				}
				id := ""
				if len(args) == 1 {
					id = args[0]
				}
				return runRestore(ctx, cmd, &f.storeFlags, s, opts, id, r)
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&r.merge, "merge", false, "keep the store's other keys instead of clearing it first")
	cmd.Flags().BoolVar(&r.force, "force", false, "restore a checkpoint older than the store's fence")
	cmd.Flags().BoolVarP(&r.yes, "yes", "y", false, "clear a store that holds keys without asking")
	cmd.Flags().BoolVar(&r.dryRun, "dry-run", false, "print what would be cleared and restored; write nothing")
	return cmd
}

func newCheckpointInspect() *cobra.Command {
	var (
		f       checkpointFlags
		records int
	)
	cmd := &cobra.Command{
		Use:   "inspect ID",
		Short: "Print a checkpoint's manifest and its first records",
		Long: `inspect prints a checkpoint's manifest, read from its footer without
verifying the file, and its first --records records; --json prints
{"manifest", "size_bytes", "records": [{"key", "value", "expires",
"ttl_ms"}]}. An unknown id fails with exit code 3.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.reader(cmd)
			if err != nil {
				return err
			}
			path, err := c.Path(args[0])
			if err != nil {
				return err
			}
			file, err := os.Open(path)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %s in %s", checkpoint.ErrNoCheckpoint, args[0], c.Dir())
			}
			if err != nil {
				return err
			}
			defer file.Close()
			st, err := file.Stat()
			if err != nil {
				return err
			}
			m, err := checkpoint.ReadManifest(file, st.Size())
			if err != nil {
				return err
			}
			if f.json {
				return inspectJSON(cmd.OutOrStdout(), &f.storeFlags, file, m, st.Size(), records)
			}
			out := cmd.OutOrStdout()
			w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "id\t%s\nformat\t%d\ncreated\t%s\nsource\t%s\nentries\t%d\nraw\t%s\ndata\t%s (%s)\nchecksum\t%s\n",
				m.ID, m.FormatVersion, m.Created.Format(time.RFC3339Nano), m.Source, m.Entries,
				bytesHuman(m.RawBytes), bytesHuman(m.CompressedBytes), m.Compression, m.Checksum)
			for k, v := range m.Labels {
				fmt.Fprintf(w, "label %s\t%s\n", k, v)
			}
			if m.Cut != nil {
				fmt.Fprintf(w, "cut offset\t%s\n", m.Cut.Offset)
				if len(m.Cut.FenceKey) > 0 {
					fmt.Fprintf(w, "cut fence\t%s token %d\n", strata.QuoteKey(m.Cut.FenceKey), m.Cut.Token)
				}
			}
			w.Flush()
			if records <= 0 {
				return nil
			}
			if _, err := file.Seek(0, io.SeekStart); err != nil {
				return err
			}
			rd, err := checkpoint.NewReader(file, nil)
			if err != nil {
				return err
			}
			now := time.Now()
			for range records {
				rec, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				ttl := "no expiry"
				if rec.ExpiresAt != 0 {
					ttl = rec.TTL(now).Round(time.Millisecond).String()
				}
				fmt.Fprintf(out, "%s = %s (%s)\n", f.show(rec.Key), f.show(rec.Value), ttl)
			}
			return nil
		},
	}
	f.register(cmd, false)
	f.registerJSON(cmd)
	cmd.Flags().BoolVar(&f.hex, "hex", false, "print keys and values as hex")
	cmd.Flags().IntVar(&records, "records", 10, "records to print")
	return cmd
}
