package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

func newMigrate() *cobra.Command {
	var (
		from, to, prefix string
		verify, resume   bool
		batch            int
	)
	cmd := &cobra.Command{
		Use:   "migrate --from URL --to URL",
		Short: "Copy every key, value and TTL from one store to another",
		Long: `migrate streams the entries of the source store into the destination in
batches, keeping each key's remaining TTL. An interrupted migration is
finished by running it again with --resume, which skips what the
destination already holds. --verify then compares every key and value (and
TTLs within 1s) and fails if anything differs.

On a terminal, stderr shows a progress bar: keys copied of the total (when
the source knows it), percentage, rate, bytes and, as [elapsed:left], the
time left. Elsewhere (a log, a pipe) only the result is printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath(cmd) != "" {
				return usageErr("migrate takes --from and --to URLs, not --%s", configFlag)
			}
			ctx := cmd.Context()
			src, err := strata.Open(ctx, from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			defer src.Close()
			dst, err := strata.Open(ctx, to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			defer dst.Close()
			var bar *progress
			total := int64(-1)
			if isTerminal(cmd.ErrOrStderr()) {
				// The bar needs the total: the source's count when it
				// keeps one, else a count of its keys first.
				if st, ok := strata.StatsOf(src); ok && st.Keys >= 0 && prefix == "" {
					total = st.Keys
				} else if total, err = countPrefix(ctx, src, []byte(prefix)); err != nil {
					return fmt.Errorf("counting the keys to migrate: %w", err)
				}
			}
			update := func(p strata.CopyProgress) {
				if bar == nil {
					bar = newProgress(cmd.ErrOrStderr(), "migrating", total)
				}
				bar.set(p.Read, "migrating", p.Bytes)
			}
			opts := &strata.CopyOptions{Prefix: []byte(prefix), BatchSize: batch, Resume: resume, Progress: update}
			p, err := strata.Copy(ctx, dst, src, opts)
			if bar != nil {
				bar.done(err == nil)
			}
			if err != nil {
				if p.Written > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "migrate stopped part-way, after writing %d keys: run the same command again with --resume to finish it\n", p.Written)
				}
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "migrated %d keys (%d skipped, %s) from %s to %s in %v\n",
				p.Written, p.Skipped, bytesHuman(p.Bytes), storekit.RedactURL(from), storekit.RedactURL(to), p.Elapsed.Round(time.Millisecond))
			if !verify {
				return nil
			}
			r, err := strata.Verify(ctx, dst, src, opts)
			fmt.Fprintf(out, "verify: %s\n", r)
			for _, k := range r.Examples {
				fmt.Fprintf(out, "  differs: %q\n", k)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "source store URL (required)")
	f.StringVar(&to, "to", "", "destination store URL (required)")
	f.StringVar(&prefix, "prefix", "", "copy only keys under this prefix")
	f.BoolVar(&verify, "verify", false, "compare every key, value and TTL afterwards")
	f.BoolVar(&resume, "resume", false, "skip entries the destination already holds")
	f.IntVar(&batch, "batch", 1000, "entries per batch")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}
