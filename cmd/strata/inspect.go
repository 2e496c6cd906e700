package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
)

// storeFlags are the flags of commands that act on one store.
type storeFlags struct {
	url string
	hex bool
	cfg *config.Config // the --config file, once open has read it
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "store", envOr("STRATA_STORE", "mem://"), "store URL (env STRATA_STORE; or the global --config)")
	cmd.Flags().BoolVar(&f.hex, "hex", false, "keys and values on the command line and in output are hex")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// open opens the store of the --config file, else of --store.
func (f *storeFlags) open(cmd *cobra.Command) (strata.Store, error) {
	if err := exclusive(cmd, "store"); err != nil {
		return nil, err
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		f.cfg = cfg
		return config.Open(cmd.Context(), cfg)
	}
	return strata.Open(cmd.Context(), f.url)
}

// arg decodes a key or value given on the command line.
func (f *storeFlags) arg(s string) ([]byte, error) {
	if !f.hex {
		return []byte(s), nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not hex: %v", strata.ErrInvalidKey, s, err)
	}
	return b, nil
}

// show formats a key or value for output: hex with --hex, else quoted when
// it is not printable text.
func (f *storeFlags) show(b []byte) string {
	if f.hex {
		return hex.EncodeToString(b)
	}
	s := string(b)
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		return q
	}
	return s
}

// withKey is withStore for commands on one key given as arg.
func withKey(cmd *cobra.Command, f *storeFlags, arg string, fn func(ctx context.Context, s strata.Store, key []byte) error) error {
	key, err := f.arg(arg)
	if err != nil {
		return err
	}
	return withStore(cmd, f, func(ctx context.Context, s strata.Store) error { return fn(ctx, s, key) })
}

// withStore opens the store, runs fn and closes the store.
func withStore(cmd *cobra.Command, f *storeFlags, fn func(ctx context.Context, s strata.Store) error) error {
	ctx := cmd.Context()
	s, err := f.open(cmd)
	if err != nil {
		return err
	}
	err = fn(ctx, s)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

func newGet() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value stored under KEY",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKey(cmd, &f, args[0], func(ctx context.Context, s strata.Store, k []byte) error {
				v, err := s.Get(ctx, k)
				if err != nil {
					return err
				}
				if f.hex {
					_, err = fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(v))
				} else {
					_, err = cmd.OutOrStdout().Write(v)
				}
				return err
			})
		},
	}
	f.register(cmd)
	return cmd
}

func newPut() *cobra.Command {
	var (
		f   storeFlags
		ttl time.Duration
	)
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Store VALUE under KEY (VALUE - reads standard input)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKey(cmd, &f, args[0], func(ctx context.Context, s strata.Store, k []byte) error {
				var v []byte
				var err error
				if args[1] == "-" {
					v, err = io.ReadAll(cmd.InOrStdin())
				} else {
					v, err = f.arg(args[1])
				}
				if err != nil {
					return err
				}
				return s.Put(ctx, k, v, ttl)
			})
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "time to live (0: the store's default; -1ns: never)")
	return cmd
}

func newDel() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "del KEY...",
		Short: "Delete keys and print how many were live",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &f, func(ctx context.Context, s strata.Store) error {
				keys := make([][]byte, len(args))
				for i, a := range args {
					k, err := f.arg(a)
					if err != nil {
						return err
					}
					keys[i] = k
				}
				n, err := strata.DeleteMany(ctx, s, keys)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), n)
				return nil
			})
		},
	}
	f.register(cmd)
	return cmd
}

func newKeys() *cobra.Command {
	var (
		f     storeFlags
		limit int
	)
	cmd := &cobra.Command{
		Use:   "keys [PREFIX]",
		Short: "List the keys under PREFIX",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &f, func(ctx context.Context, s strata.Store) error {
				var prefix []byte
				if len(args) == 1 {
					var err error
					if prefix, err = f.arg(args[0]); err != nil {
						return err
					}
				}
				n := 0
				for k, err := range s.Keys(ctx, prefix) {
					if err != nil {
						return err
					}
					fmt.Fprintln(cmd.OutOrStdout(), f.show(k))
					if n++; limit > 0 && n >= limit {
						break
					}
				}
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "stop after this many keys (0: all)")
	return cmd
}

func newTTL() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "ttl KEY",
		Short: "Print the time KEY has left, or \"no expiry\"",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKey(cmd, &f, args[0], func(ctx context.Context, s strata.Store, k []byte) error {
				ttl, err := strata.TTL(ctx, s, k)
				if err != nil {
					return err
				}
				if ttl == strata.NoExpiry {
					fmt.Fprintln(cmd.OutOrStdout(), "no expiry")
				} else {
					fmt.Fprintln(cmd.OutOrStdout(), ttl.Round(time.Millisecond))
				}
				return nil
			})
		},
	}
	f.register(cmd)
	return cmd
}

func newStats() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print the store's counters and backend readings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &f, func(ctx context.Context, s strata.Store) error {
				if err := strata.Ping(ctx, s); err != nil {
					return err
				}
				st, ok := strata.StatsOf(s)
				if !ok {
					return fmt.Errorf("%w: the store reports no stats", strata.ErrUnsupported)
				}
				printStats(cmd.OutOrStdout(), st)
				return nil
			})
		},
	}
	f.register(cmd)
	return cmd
}

func printStats(out io.Writer, st strata.Stats) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "backend\t%s\n", st.Backend)
	fmt.Fprintf(w, "keys\t%d\n", st.Keys)
	fmt.Fprintf(w, "gets\t%d\nhits\t%d\nmisses\t%d\nhit_rate\t%.3f\n", st.Gets, st.Hits, st.Misses, st.HitRate())
	fmt.Fprintf(w, "puts\t%d\ndeletes\t%d\nerrors\t%d\n", st.Puts, st.Deletes, st.Errors)
	fmt.Fprintf(w, "bytes_read\t%d\nbytes_written\t%d\n", st.BytesRead, st.BytesWritten)
	for _, k := range slices.Sorted(maps.Keys(st.Gauges)) {
		fmt.Fprintf(w, "%s\t%g\n", k, st.Gauges[k])
	}
	w.Flush()
}
