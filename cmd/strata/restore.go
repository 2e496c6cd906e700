package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/storekit"
)

// restoreFlags are the flags of checkpoint restore beyond the store and
// the directory.
type restoreFlags struct {
	merge, force, yes, dryRun bool
}

// runRestore restores checkpoint id (the newest valid one if "") of the
// directory opts names into s, as checkpoint restore's flags r say.
func runRestore(ctx context.Context, cmd *cobra.Command, f *storeFlags, s strata.Store, opts *checkpoint.Options, id string, r restoreFlags) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	opts.ForceRestore = r.force
	if r.merge {
		opts.Mode = checkpoint.Merge
	}
	if r.dryRun {
		return restorePlan(ctx, cmd, f, s, opts, id, r)
	}
	if !r.merge && !r.yes {
		n, err := countKeys(ctx, s)
		if err != nil {
			return err
		}
		if n > 0 {
			if !isTerminal(cmd.InOrStdin()) {
				return usageErr("%s holds %d keys, and restore deletes every one of them%s before writing the checkpoint: "+
					"add --yes to go ahead, --merge to keep them, or --dry-run to see what would be cleared and restored",
					f.where(cmd), n, wholeDatabase(s))
			}
			c, err := checkpoint.New(s, opts)
			if err != nil {
				return err
			}
			m, skipped, err := selectCheckpoint(ctx, c, id)
			c.Close()
			printSkipped(out, skipped)
			if err != nil {
				return err
			}
			fmt.Fprintf(errOut, "Restore checkpoint %s (%d entries, created %s) into %s, deleting its %d keys%s first? [y/N] ",
				m.ID, m.Entries, m.Created.Format(time.RFC3339), f.where(cmd), n, wholeDatabase(s))
			answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
				return errors.New("restore not confirmed: nothing was written")
			}
			id = m.ID // the one confirmed, even if a newer one appears meanwhile
		}
	}

	var (
		bar     *progress
		started checkpoint.Progress // the first report: the restore began to write
		began   bool
	)
	opts.RestoreProgress = func(p checkpoint.Progress) {
		if !began {
			began, started = true, p
			bar = newProgress(errOut, "restoring "+p.ID, p.Entries)
		}
		what := "restoring"
		if p.Restored+p.Expired == 0 && p.Cleared > 0 {
			what = fmt.Sprintf("clearing (%d keys deleted)", p.Cleared)
		}
		bar.set(p.Restored+p.Expired, what, -1)
	}
	c, err := checkpoint.New(s, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	var rep checkpoint.Report
	if id != "" {
		rep, err = c.Restore(ctx, id)
	} else {
		rep, err = c.RestoreLatest(ctx)
	}
	if bar != nil {
		bar.done(err == nil)
	}
	printSkipped(out, rep.Skipped)
	if err != nil {
		if began {
			fmt.Fprintf(errOut, "The restore of checkpoint %s stopped part-way: %s holds part of it (%d of its %d entries written, %d keys cleared first).\n"+
				"Restoring is idempotent: to finish, restore the same checkpoint again:\n  %s\n",
				started.ID, f.where(cmd), rep.Restored, started.Entries, rep.Cleared, rerunRestore(cmd, started.ID))
		}
		return err
	}
	chain := ""
	if len(rep.Chain) > 1 {
		chain = fmt.Sprintf(" (%s and %d deltas)", rep.Chain[0], len(rep.Chain)-1)
	}
	fmt.Fprintf(out, "restored %s%s: %d entries, %d deleted (%d expired, %d keys cleared first)\n",
		rep.ID, chain, rep.Restored, rep.Deleted, rep.Expired, rep.Cleared)
	return nil
}

func printSkipped(out io.Writer, skipped []checkpoint.Skip) {
	for _, sk := range skipped {
		fmt.Fprintf(out, "skipped %s: %v\n", sk.ID, sk.Err)
	}
}

// restorePlan prints what restoring id (or the newest valid checkpoint)
// into s would do, writing nothing: it verifies the checkpoint, counts the
// entries that have expired by now and the keys that would be cleared, and
// checks the fence.
func restorePlan(ctx context.Context, cmd *cobra.Command, f *storeFlags, s strata.Store, opts *checkpoint.Options, id string, r restoreFlags) error {
	out := cmd.OutOrStdout()
	c, err := checkpoint.New(s, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	m, skipped, err := selectCheckpoint(ctx, c, id)
	printSkipped(out, skipped)
	if err != nil {
		return err
	}
	chain, err := c.Chain(ctx, m.ID)
	if err != nil {
		return err
	}
	var expired, entries int64
	for _, l := range chain {
		n, err := scanCheckpoint(ctx, c.Location(), l.ID, time.Now())
		if err != nil {
			return err
		}
		expired += n
		entries += l.Manifest.Entries
	}
	n, err := countKeys(ctx, s)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "dry run: nothing written\n")
	what := "checkpoint " + m.ID
	if len(chain) > 1 {
		what = fmt.Sprintf("chain %s (%s and %d deltas)", m.ID, chain[0].ID, len(chain)-1)
	}
	fmt.Fprintf(out, "would restore %s (created %s from %s): %d entries, %d of them expired by now, so %d written\n",
		what, m.Created.Format(time.RFC3339), m.Source, entries, expired, entries-expired)
	fmt.Fprintf(out, "into %s, which holds %d keys: ", f.where(cmd), n)
	if r.merge {
		fmt.Fprintf(out, "kept (merge), those the checkpoint holds overwritten\n")
	} else {
		fmt.Fprintf(out, "all deleted first (replace)%s\n", wholeDatabase(s))
	}
	if m.Cut != nil && len(m.Cut.FenceKey) > 0 {
		token, err := strata.ReadFence(ctx, s, m.Cut.FenceKey)
		if err != nil {
			return fmt.Errorf("reading the store's fence: %w", err)
		}
		switch {
		case token > m.Cut.Token && !r.force:
			fmt.Fprintf(out, "refused: the store's fence %s holds token %d, newer than the checkpoint's %d (--force restores it anyway)\n",
				storekit.QuoteKey(m.Cut.FenceKey), token, m.Cut.Token)
		case token > m.Cut.Token:
			fmt.Fprintf(out, "--force: rolls the store's fence %s back from token %d to the checkpoint's %d\n",
				storekit.QuoteKey(m.Cut.FenceKey), token, m.Cut.Token)
		}
	}
	return nil
}

// wholeDatabase says, for messages about clearing s, when s is a Redis
// store without a key prefix: clearing it deletes every key of the
// database, the application's or not.
func wholeDatabase(s strata.Store) string {
	if rb, ok := s.(redisBacked); ok && rb.KeyPrefix() == "" {
		return " (a Redis store without a key prefix: every key of the database)"
	}
	return ""
}

// countKeys counts the keys s lists.
func countKeys(ctx context.Context, s strata.Store) (int64, error) {
	return countPrefix(ctx, s, nil)
}

// countPrefix counts the keys s lists under prefix.
func countPrefix(ctx context.Context, s strata.Store, prefix []byte) (int64, error) {
	var n int64
	for _, err := range s.Keys(ctx, prefix) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// selectCheckpoint verifies checkpoint id, or, for "", the newest valid
// checkpoint, and returns its manifest, with the newer ones it skipped.
func selectCheckpoint(ctx context.Context, c *checkpoint.Coordinator, id string) (checkpoint.Manifest, []checkpoint.Skip, error) {
	if id != "" {
		m, err := c.Verify(ctx, id)
		return m, nil, err
	}
	infos, err := c.List()
	if err != nil {
		return checkpoint.Manifest{}, nil, err
	}
	var skipped []checkpoint.Skip
	for i := len(infos) - 1; i >= 0; i-- {
		m, err := c.Verify(ctx, infos[i].ID)
		if err == nil {
			return m, skipped, nil
		}
		if ctx.Err() != nil {
			return checkpoint.Manifest{}, skipped, ctx.Err()
		}
		skipped = append(skipped, checkpoint.Skip{ID: infos[i].ID, Err: err})
	}
	return checkpoint.Manifest{}, skipped, fmt.Errorf("%w in %s (%d skipped as invalid)", checkpoint.ErrNoCheckpoint, c.Location(), len(skipped))
}

// scanCheckpoint reads checkpoint id of loc whole, which verifies its
// structure, and counts its entries that have expired at now.
func scanCheckpoint(ctx context.Context, loc checkpoint.Location, id string, now time.Time) (int64, error) {
	f, err := loc.Open(ctx, id)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rd, err := checkpoint.NewReader(f, nil)
	if err != nil {
		return 0, err
	}
	var expired int64
	for i := 0; ; i++ {
		if i&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		rec, err := rd.Next()
		if err == io.EOF {
			return expired, nil
		}
		if err != nil {
			return 0, err
		}
		if !rec.Delete && rec.ExpiresAt != 0 && rec.TTL(now) <= 0 {
			expired++
		}
	}
}

// rerunRestore returns the command line that finishes an interrupted
// restore of checkpoint id: the flags given, the id, and --yes. A
// password in --store is not shown.
func rerunRestore(cmd *cobra.Command, id string) string {
	parts := []string{"strata"}
	add := func(fl *pflag.Flag) {
		switch {
		case !fl.Changed || fl.Name == "yes" || fl.Name == "dry-run":
		case fl.Value.Type() == "bool" && fl.Value.String() == "true":
			parts = append(parts, "--"+fl.Name)
		case fl.Name == "store":
			parts = append(parts, "--store="+shellQuote(storekit.RedactURL(fl.Value.String())))
		default:
			parts = append(parts, "--"+fl.Name+"="+shellQuote(fl.Value.String()))
		}
	}
	cmd.InheritedFlags().VisitAll(add)
	parts = append(parts, "checkpoint", "restore")
	cmd.LocalFlags().VisitAll(add)
	parts = append(parts, id, "--yes")
	line := strings.Join(parts, " ")
	if fl := cmd.Flags().Lookup("store"); fl != nil && fl.Changed && storekit.RedactURL(fl.Value.String()) != fl.Value.String() {
		line += "\n  (with the password in --store: it is not shown here)"
	}
	return line
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("@%+=:,./_-", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// listJSON is what checkpoint list --json prints.
func listJSON(infos []checkpoint.Info) []map[string]any {
	out := make([]map[string]any, 0, len(infos))
	for _, in := range infos {
		m := map[string]any{"id": in.ID, "path": in.Path, "size_bytes": in.Size, "manifest": in.Manifest}
		if in.Err != nil {
			m["error"] = in.Err.Error()
		}
		out = append(out, m)
	}
	return out
}

// inspectJSON prints what checkpoint inspect --json prints: the manifest,
// the chain a restore applies, and the first records of checkpoint in.
func inspectJSON(ctx context.Context, out io.Writer, f *storeFlags, c *checkpoint.Coordinator, in checkpoint.Info, records int) error {
	recs := []map[string]any{}
	if records > 0 {
		file, err := c.Location().Open(ctx, in.ID)
		if err != nil {
			return err
		}
		defer file.Close()
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
			r := map[string]any{"expires": rec.ExpiresAt != 0, "deleted": rec.Delete}
			f.putJSON(r, "key", rec.Key)
			if !rec.Delete {
				f.putJSON(r, "value", rec.Value)
			}
			if rec.ExpiresAt != 0 {
				r["ttl_ms"] = rec.TTL(now).Milliseconds()
			}
			recs = append(recs, r)
		}
	}
	chain := []map[string]any{}
	if links, err := c.Chain(ctx, in.ID); err == nil {
		for _, l := range links {
			chain = append(chain, map[string]any{"id": l.ID, "delta": l.Manifest.IsDelta(), "entries": l.Manifest.Entries,
				"deletes": l.Manifest.Deletes, "size_bytes": l.Size, "token": token(l.Manifest)})
		}
	}
	return printJSON(out, map[string]any{"manifest": in.Manifest, "size_bytes": in.Size, "chain": chain, "records": recs})
}
