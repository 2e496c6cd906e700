package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
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
TTLs within 1s) and fails if anything differs.`,
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
			bar := newProgressBar(cmd.ErrOrStderr())
			opts := &strata.CopyOptions{Prefix: []byte(prefix), BatchSize: batch, Resume: resume, Progress: bar.update}
			p, err := strata.Copy(ctx, dst, src, opts)
			bar.done(p)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "migrated %d keys (%d skipped, %s) from %s to %s in %v\n",
				p.Written, p.Skipped, bytesHuman(p.Bytes), strata.RedactURL(from), strata.RedactURL(to), p.Elapsed.Round(time.Millisecond))
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

// progressBar draws copy progress on a terminal, or a line a second
// elsewhere.
type progressBar struct {
	w     io.Writer
	tty   bool
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, tty: tty}
}

func (b *progressBar) line(p strata.CopyProgress) string {
	rate := float64(p.Read) / max(p.Elapsed.Seconds(), 1e-9)
	s := fmt.Sprintf("%d keys", p.Read)
	if p.Total > 0 {
		s = fmt.Sprintf("%d/%d keys (%.0f%%)", p.Read, p.Total, 100*float64(p.Read)/float64(p.Total))
	}
	s += fmt.Sprintf("  %s  %.0f keys/s", bytesHuman(p.Bytes), rate)
	if eta := p.ETA(); eta > 0 {
		s += "  ETA " + eta.Round(time.Second).String()
	}
	return s
}

func (b *progressBar) update(p strata.CopyProgress) {
	if time.Since(b.last) < 200*time.Millisecond || (!b.tty && time.Since(b.last) < time.Second) {
		return
	}
	b.last = time.Now()
	if b.tty {
		fmt.Fprintf(b.w, "\r\033[K%s", b.line(p))
		b.drawn = true
	} else {
		fmt.Fprintln(b.w, b.line(p))
	}
}

func (b *progressBar) done(p strata.CopyProgress) {
	if b.drawn {
		fmt.Fprintf(b.w, "\r\033[K%s\n", b.line(p))
	}
}

func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
