package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
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

// withCoordinator opens a Coordinator over the flags' location for s (nil
// for the commands that only read checkpoints), runs fn and closes it.
func (f *checkpointFlags) withCoordinator(cmd *cobra.Command, s strata.Store, opts *checkpoint.Options, fn func(c *checkpoint.Coordinator) error) error {
	o, err := f.options(cmd)
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
back to the full one it is based on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withCoordinator(cmd, nil, nil, func(c *checkpoint.Coordinator) error {
				infos, err := c.ListContext(cmd.Context())
				if err != nil {
					return err
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
	return cmd
}

func newCheckpointVerify() *cobra.Command {
	var f checkpointFlags
	cmd := &cobra.Command{
		Use:   "verify [ID...]",
		Short: "Verify the checksums and structure of checkpoints and their chains (all by default)",
		RunE: func(cmd *cobra.Command, ids []string) error {
			return f.withCoordinator(cmd, nil, nil, func(c *checkpoint.Coordinator) error {
				var results []checkpoint.Verified
				if len(ids) == 0 {
					var err error
					if results, err = c.VerifyAll(cmd.Context()); err != nil {
						return err
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
		f     checkpointFlags
		merge bool
		force bool
	)
	cmd := &cobra.Command{
		Use:   "restore [ID]",
		Short: "Restore a checkpoint into --store (the newest valid one by default)",
		Long: `restore verifies the checkpoint (a delta with its whole chain), then writes
its entries into --store with their remaining TTLs (expired ones are
skipped): a chain is applied from its full checkpoint through each delta.
Without an ID it restores the newest valid checkpoint and names the damaged
newer ones it skipped. By default the store is cleared first (replace);
--merge keeps other keys. A checkpoint of a job's cut is refused over a store
whose fence holds a newer token (a newer leader has committed since); --force
restores it anyway, rolling that state back.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &f.storeFlags, func(ctx context.Context, s strata.Store) error {
				opts := &checkpoint.Options{ForceRestore: force}
				if merge {
					opts.Mode = checkpoint.Merge
				}
				return f.withCoordinator(cmd, s, opts, func(c *checkpoint.Coordinator) error {
					var (
						r   checkpoint.Report
						err error
					)
					if len(args) == 1 {
						r, err = c.Restore(ctx, args[0])
					} else {
						r, err = c.RestoreLatest(ctx)
					}
					out := cmd.OutOrStdout()
					for _, sk := range r.Skipped {
						fmt.Fprintf(out, "skipped %s: %v\n", sk.ID, sk.Err)
					}
					if err != nil {
						return err
					}
					chain := ""
					if len(r.Chain) > 1 {
						chain = fmt.Sprintf(" (%s and %d deltas)", r.Chain[0], len(r.Chain)-1)
					}
					fmt.Fprintf(out, "restored %s%s: %d entries, %d deleted (%d expired, %d keys cleared first)\n",
						r.ID, chain, r.Restored, r.Deleted, r.Expired, r.Cleared)
					return nil
				})
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&merge, "merge", false, "keep the store's other keys instead of clearing it first")
	cmd.Flags().BoolVar(&force, "force", false, "restore a checkpoint older than the store's fence")
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
deletes are shown as such).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withCoordinator(cmd, nil, nil, func(c *checkpoint.Coordinator) error {
				return inspectCheckpoint(cmd, &f, c, args[0], records)
			})
		},
	}
	f.register(cmd, false)
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
			fmt.Fprintf(w, "cut fence\t%s token %d\n", strata.QuoteKey(m.Cut.FenceKey), m.Cut.Token)
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
