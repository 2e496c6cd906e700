package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/storekit"
)

// checkpointFlags are the flags shared by the checkpoint subcommands.
type checkpointFlags struct {
	storeFlags
	dir      string
	location string
}

func (f *checkpointFlags) register(cmd *cobra.Command, withStore bool) {
	if withStore {
		f.storeFlags.register(cmd)
	}
	cmd.Flags().StringVar(&f.dir, "dir", envOr("CHECKPOINT_DIR", "checkpoints"), "checkpoint directory (env CHECKPOINT_DIR; or the global --config)")
	cmd.Flags().StringVar(&f.location, "location", os.Getenv("CHECKPOINT_LOCATION"),
		"checkpoint location URL instead of --dir: file:///path, s3://bucket/prefix?endpoint=…&region=… (env CHECKPOINT_LOCATION)")
}

// options returns the Coordinator's options: those of the --config file's
// [checkpoint] table (location or directory, retention, compression,
// intervals; its enabled key concerns a running process, not these
// commands), else --location or --dir.
func (f *checkpointFlags) options(cmd *cobra.Command) (*checkpoint.Options, error) {
	if err := exclusive(cmd, "dir", "location"); err != nil {
		return nil, err
	}
	cfg := f.cfg // read already if the command opened its store
	if cfg == nil {
		var err error
		if cfg, err = loadConfig(cmd); err != nil {
			return nil, err
		}
	}
	if cfg != nil {
		o := checkpoint.OptionsFromConfig(cfg.Checkpoint)
		if o.Dir == "" && o.Location == "" {
			return nil, fmt.Errorf("%w: --%s %s: checkpoint.checkpoint_dir, checkpoint.location or CHECKPOINT_DIR is required",
				strata.ErrInvalidConfig, configFlag, configPath(cmd))
		}
		return &o, nil
	}
	if f.location == "" {
		return &checkpoint.Options{Dir: f.dir}, nil
	}
	if cmd.Flags().Changed("dir") {
		return nil, fmt.Errorf("%w: give --dir or --location, not both", strata.ErrInvalidConfig)
	}
	return &checkpoint.Options{Location: f.location}, nil
}

// existing returns the options of the commands that read checkpoints: for
// them a checkpoint directory that does not exist is an error matching
// strata.ErrNotFound, not one to create (as checkpoint.New would).
func (f *checkpointFlags) existing(cmd *cobra.Command) (*checkpoint.Options, error) {
	o, err := f.options(cmd)
	if err != nil {
		return nil, err
	}
	dir := o.Dir
	if u, err := url.Parse(o.Location); err == nil && u.Scheme == "file" {
		dir = u.Path
	}
	if dir == "" {
		return o, nil // a bucket: an empty one lists no checkpoint
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint directory %s: %w", dir, strata.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("checkpoint directory: %w", err)
	}
	return o, nil
}

// withCoordinator opens a Coordinator over the flags' location for s (nil
// for the commands that only read checkpoints), runs fn and closes it.
func (f *checkpointFlags) withCoordinator(cmd *cobra.Command, s strata.Store, opts *checkpoint.Options, fn func(c *checkpoint.Coordinator) error) error {
	options := f.options
	if s == nil {
		options = f.existing // the commands that only read checkpoints
	}
	o, err := options(cmd)
	if err != nil {
		return err
	}
	if opts != nil {
		opts.Dir, opts.Location = o.Dir, o.Location
		o = opts
	}
	c, err := checkpoint.New(s, o)
	if err != nil {
		return err
	}
	err = fn(c)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// kind describes a checkpoint's place in its chain.
func kind(m checkpoint.Manifest) string {
	if !m.IsDelta() {
		return "full"
	}
	return fmt.Sprintf("delta %d over %s", m.Depth, m.Parent)
}

// token returns a checkpoint's fence token as text, "-" for none.
func token(m checkpoint.Manifest) string {
	if m.Cut == nil || m.Cut.Token == 0 {
		return "-"
	}
	return strconv.FormatUint(m.Cut.Token, 10)
}

func newCheckpoint() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Create, list, verify, inspect and restore checkpoints of a store",
		Long: `checkpoint creates, lists, verifies, inspects and restores the checkpoints
of a store in a location: --store with --dir or --location, or the store
and the [checkpoint] table (location or directory, retention, compression)
of the global --config file, whatever its enabled key says.`,
	}
	cmd.AddCommand(newCheckpointCreate(), newCheckpointList(), newCheckpointVerify(), newCheckpointRestore(), newCheckpointInspect())
	return cmd
}

func newCheckpointCreate() *cobra.Command {
	var f checkpointFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Write a full checkpoint of --store into --dir (or --location)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &f.storeFlags, func(ctx context.Context, s strata.Store) error {
				return f.withCoordinator(cmd, s, nil, func(c *checkpoint.Coordinator) error {
					start := time.Now()
					m, err := c.Checkpoint(ctx)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "created %s in %s: %d entries, %s (%s raw) in %v\n",
						m.ID, c.Location(), m.Entries, bytesHuman(m.CompressedBytes), bytesHuman(m.RawBytes), time.Since(start).Round(time.Millisecond))
					return nil
				})
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
		Short: "List the checkpoints in --dir (or --location), newest last (without verifying them)",
		Long: `list shows each checkpoint's id, creation time, kind (full, or a delta with
its depth and parent), fence token, entries, size, source and whether its
manifest could be read. A delta restores with every checkpoint of its chain
back to the full one it is based on. --json prints a JSON array of objects
{"id", "path", "size_bytes", "manifest", "error"}. A directory that does
not exist fails with exit code 3.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withCoordinator(cmd, nil, nil, func(c *checkpoint.Coordinator) error {
				infos, err := c.ListContext(cmd.Context())
				if err != nil {
					return err
				}
				if f.json {
					return printJSON(cmd.OutOrStdout(), listJSON(infos))
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tCREATED\tKIND\tTOKEN\tENTRIES\tSIZE\tSOURCE\tSTATE")
				for _, in := range infos {
					state := "ok (unverified)"
					if in.Err != nil {
						state = "damaged: " + in.Err.Error()
					}
					m := in.Manifest
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", in.ID, m.Created.Format(time.RFC3339), kind(m), token(m),
						m.Entries, bytesHuman(in.Size), m.Source, state)
				}
				return w.Flush()
			})
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
		Short: "Verify the checksums and structure of checkpoints and their chains (all by default)",
		Long: `verify reads checkpoints whole, checking their structure, counts, both
SHA-256 sums and, for a delta, its chain: those named, or every one in the
location. It fails when one does not verify (exit code 1), and when the
directory, a named checkpoint, or any checkpoint at all is missing (exit
code 3).`,
		RunE: func(cmd *cobra.Command, ids []string) error {
			return f.withCoordinator(cmd, nil, nil, func(c *checkpoint.Coordinator) error {
				var results []checkpoint.Verified
				if len(ids) == 0 {
					var err error
					if results, err = c.VerifyAll(cmd.Context()); err != nil {
						return err
					}
					if len(results) == 0 {
						return fmt.Errorf("%w in %s", checkpoint.ErrNoCheckpoint, c.Location())
					}
				}
				for _, id := range ids {
					m, err := c.Verify(cmd.Context(), id)
					v := checkpoint.Verified{ID: id, Manifest: m, Err: err}
					if err == nil {
						chain, _ := c.Chain(cmd.Context(), id)
						for _, in := range chain {
							v.Chain = append(v.Chain, in.ID)
						}
					}
					results = append(results, v)
				}
				var bad []error
				for _, v := range results {
					if v.Err != nil {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: FAILED: %v\n", v.ID, v.Err)
						bad = append(bad, fmt.Errorf("%s: %w", v.ID, v.Err))
						continue
					}
					chain := ""
					if len(v.Chain) > 1 {
						chain = fmt.Sprintf(", chain of %d from %s", len(v.Chain), v.Chain[0])
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %s, %d entries, %s%s\n", v.ID, kind(v.Manifest), v.Manifest.Entries, v.Manifest.Checksum, chain)
				}
				if len(bad) > 0 {
					return fmt.Errorf("%d of %d checkpoints failed verification: %w", len(bad), len(results), errors.Join(bad...))
				}
				return nil
			})
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
		Long: `restore verifies the checkpoint (a delta with its whole chain), then writes
its entries into --store with their remaining TTLs (expired ones are
skipped): a chain is applied from its full checkpoint through each delta.
Without an ID it restores the newest valid checkpoint and names the damaged
newer ones it skipped.

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
		Short: "Print a checkpoint's manifest, its chain, and its first records",
		Long: `inspect prints the manifest of checkpoint ID (without verifying it; see
verify), the chain a restore of it applies (the full checkpoint and each
delta, with their sizes and fence tokens), and its first records (a delta's
deletes are shown as such). --json prints {"manifest", "size_bytes",
"chain", "records": [{"key", "value", "expires", "ttl_ms", "deleted"}]}.
An unknown id fails with exit code 3.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withCoordinator(cmd, nil, nil, func(c *checkpoint.Coordinator) error {
				return inspectCheckpoint(cmd, &f, c, args[0], records)
			})
		},
	}
	f.register(cmd, false)
	f.registerJSON(cmd)
	cmd.Flags().BoolVar(&f.hex, "hex", false, "print keys and values as hex")
	cmd.Flags().IntVar(&records, "records", 10, "records to print")
	return cmd
}

func inspectCheckpoint(cmd *cobra.Command, f *checkpointFlags, c *checkpoint.Coordinator, id string, records int) error {
	ctx := cmd.Context()
	if err := checkpoint.ValidateID(id); err != nil {
		return err
	}
	infos, err := c.ListContext(ctx)
	if err != nil {
		return err
	}
	var in *checkpoint.Info
	for i := range infos {
		if infos[i].ID == id {
			in = &infos[i]
		}
	}
	if in == nil {
		return fmt.Errorf("%w: %s in %s", checkpoint.ErrNoCheckpoint, id, c.Location())
	}
	if in.Err != nil {
		return in.Err
	}
	if f.json {
		return inspectJSON(ctx, cmd.OutOrStdout(), &f.storeFlags, c, *in, records)
	}
	m := in.Manifest
	out := cmd.OutOrStdout()
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "id\t%s\nlocation\t%s\nformat\t%d\nkind\t%s\ncreated\t%s\nsource\t%s\nentries\t%d\n",
		m.ID, c.Location(), m.FormatVersion, kind(m), m.Created.Format(time.RFC3339Nano), m.Source, m.Entries)
	if m.IsDelta() {
		fmt.Fprintf(w, "deletes\t%d\nparent\t%s (%s)\nbase\t%s\n", m.Deletes, m.Parent, m.ParentChecksum, m.Base)
	}
	fmt.Fprintf(w, "raw\t%s\ndata\t%s (%s)\nsize\t%s\nchecksum\t%s\n",
		bytesHuman(m.RawBytes), bytesHuman(m.CompressedBytes), m.Compression, bytesHuman(in.Size), m.Checksum)
	for k, v := range m.Labels {
		fmt.Fprintf(w, "label %s\t%s\n", k, v)
	}
	if m.Cut != nil {
		fmt.Fprintf(w, "cut offset\t%s\n", m.Cut.Offset)
		switch {
		case len(m.Cut.FenceKey) > 0:
			fmt.Fprintf(w, "cut fence\t%s token %d\n", storekit.QuoteKey(m.Cut.FenceKey), m.Cut.Token)
		case m.Cut.Token > 0:
			fmt.Fprintf(w, "cut token\t%d\n", m.Cut.Token)
		}
	}
	w.Flush()
	chain, err := c.Chain(ctx, id)
	if err != nil {
		fmt.Fprintf(out, "\nchain: BROKEN: %v\n", err)
	} else {
		var total int64
		fmt.Fprintf(out, "\nchain (%d checkpoints, applied in this order):\n", len(chain))
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  ID\tKIND\tTOKEN\tENTRIES\tDELETES\tSIZE")
		for _, l := range chain {
			total += l.Size
			k := "full (base)"
			if l.Manifest.IsDelta() {
				k = fmt.Sprintf("delta %d", l.Manifest.Depth)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%d\t%s\n", l.ID, k, token(l.Manifest), l.Manifest.Entries, l.Manifest.Deletes, bytesHuman(l.Size))
		}
		w.Flush()
		fmt.Fprintf(out, "  total %s\n", bytesHuman(total))
	}
	if records <= 0 {
		return nil
	}
	r, err := c.Location().Open(ctx, id)
	if err != nil {
		return err
	}
	defer r.Close()
	rd, err := checkpoint.NewReader(r, nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	now := time.Now()
	for range records {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if rec.Delete {
			fmt.Fprintf(out, "%s deleted\n", f.show(rec.Key))
			continue
		}
		ttl := "no expiry"
		if rec.ExpiresAt != 0 {
			ttl = rec.TTL(now).Round(time.Millisecond).String()
		}
		fmt.Fprintf(out, "%s = %s (%s)\n", f.show(rec.Key), f.show(rec.Value), ttl)
	}
	return nil
}
