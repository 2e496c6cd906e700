package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/storekit"
)

// storeFlags are the flags of commands that act on one store.
type storeFlags struct {
	url  string
	hex  bool
	json bool
	cfg  *config.Config // the --config file, once open has read it
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "store", "", "store URL, such as redis://host:6379/0 or pebble:///var/lib/app/state (else env STRATA_STORE, else the global --config)")
	cmd.Flags().BoolVar(&f.hex, "hex", false, "keys and values on the command line and in output are hex")
}

// registerJSON adds --json, for commands that can print JSON.
func (f *storeFlags) registerJSON(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON: keys and values as strings, or as hex in key_hex and value_hex with --hex or when they are not UTF-8")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// storeURL returns the store URL of --store, else of STRATA_STORE, or ""
// for neither.
func (f *storeFlags) storeURL() string {
	return cmp.Or(f.url, os.Getenv("STRATA_STORE"))
}

// open opens the store of --store, else of STRATA_STORE, else of the
// --config file; without any of them it is a usage error: a throwaway
// in-memory store is never what a data command means.
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
	u := f.storeURL()
	if u == "" {
		return nil, usageErr("no store: give --store URL (redis://host:6379/0, pebble:///path, bolt:///path.db, mem:// ...), set STRATA_STORE, or give the global --%s file", configFlag)
	}
	return strata.Open(cmd.Context(), u)
}

// where names the store for messages, without its password.
func (f *storeFlags) where(cmd *cobra.Command) string {
	if p := configPath(cmd); p != "" {
		return "the store of " + p
	}
	return storekit.RedactURL(f.storeURL())
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

// quote formats a key for messages: hex with --hex, else quoted and
// shortened.
func (f *storeFlags) quote(key []byte) string {
	if f.hex {
		return hex.EncodeToString(key)
	}
	return storekit.QuoteKey(key)
}

// keyErr names key in err, unless the store's error (an OpError) names it
// already, so that a message says which key was not found.
func (f *storeFlags) keyErr(op string, key []byte, err error) error {
	var oe *strata.OpError
	if err == nil || errors.As(err, &oe) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, f.quote(key), err)
}

// putJSON sets name in m to b as a string, or to its hex under name+"_hex"
// with --hex or when b is not UTF-8 (a JSON string cannot carry it).
func (f *storeFlags) putJSON(m map[string]any, name string, b []byte) {
	if f.hex || !utf8.Valid(b) {
		m[name+"_hex"] = hex.EncodeToString(b)
		return
	}
	m[name] = string(b)
}

// printJSON writes v as indented JSON and a newline.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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

// dataCmd marks cmd as a data command: its --timeout defaults to
// dataTimeout.
func dataCmd(cmd *cobra.Command) *cobra.Command {
	cmd.Annotations = map[string]string{dataCommand: "true"}
	return cmd
}

func newGet() *cobra.Command {
	var (
		f   storeFlags
		raw bool
	)
	cmd := dataCmd(&cobra.Command{
		Use:   "get KEY",
		Short: "Print the value stored under KEY",
		Long: `get prints the value stored under KEY and a newline; --raw prints the value
exactly, with nothing added (for binary values, or to pipe into a file),
--hex prints it as hex (with --raw, --hex applies to KEY only), --json as a
JSON object {"key", "value"}. A key that
is absent or expired fails with exit code 3.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKey(cmd, &f, args[0], func(ctx context.Context, s strata.Store, k []byte) error {
				v, err := s.Get(ctx, k)
				if err != nil {
					return f.keyErr("get", k, err)
				}
				out := cmd.OutOrStdout()
				switch {
				case f.json:
					m := map[string]any{}
					f.putJSON(m, "key", k)
					f.putJSON(m, "value", v)
					return printJSON(out, m)
				case raw:
					_, err = out.Write(v)
				case f.hex:
					_, err = fmt.Fprintln(out, hex.EncodeToString(v))
				default:
					_, err = out.Write(append(v, '\n'))
				}
				return err
			})
		},
	})
	f.register(cmd)
	f.registerJSON(cmd)
	cmd.Flags().BoolVar(&raw, "raw", false, "print the value's bytes exactly, without a newline")
	cmd.MarkFlagsMutuallyExclusive("raw", "json")
	return cmd
}

func newPut() *cobra.Command {
	var (
		f   storeFlags
		ttl time.Duration
	)
	cmd := dataCmd(&cobra.Command{
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
				return f.keyErr("put", k, s.Put(ctx, k, v, ttl))
			})
		},
	})
	f.register(cmd)
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "time to live (0: the store's default; -1ns: never)")
	return cmd
}

func newDel() *cobra.Command {
	var f storeFlags
	cmd := dataCmd(&cobra.Command{
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
	})
	f.register(cmd)
	return cmd
}

func newKeys() *cobra.Command {
	var (
		f     storeFlags
		limit int
	)
	cmd := dataCmd(&cobra.Command{
		Use:   "keys [PREFIX]",
		Short: "List the keys under PREFIX",
		Long: `keys lists the keys under PREFIX (all by default), one a line, quoted when
they are not printable text; --json prints a JSON array of objects
{"key"}. On Redis the listing is a SCAN: a key may be listed twice.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &f, func(ctx context.Context, s strata.Store) error {
				var prefix []byte
				if len(args) == 1 {
					var err error
					if prefix, err = f.arg(args[0]); err != nil {
						return err
					}
				}
				out := cmd.OutOrStdout()
				if f.json {
					fmt.Fprint(out, "[")
				}
				n := 0
				for k, err := range s.Keys(ctx, prefix) {
					if err != nil {
						return err
					}
					if f.json {
						m := map[string]any{}
						f.putJSON(m, "key", k)
						b, err := json.Marshal(m)
						if err != nil {
							return err
						}
						fmt.Fprintf(out, "%s\n  %s", map[bool]string{true: "", false: ","}[n == 0], b)
					} else {
						fmt.Fprintln(out, f.show(k))
					}
					if n++; limit > 0 && n >= limit {
						break
					}
				}
				if f.json {
					if n > 0 {
						fmt.Fprint(out, "\n")
					}
					fmt.Fprintln(out, "]")
				}
				return nil
			})
		},
	})
	f.register(cmd)
	f.registerJSON(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "stop after this many keys (0: all)")
	return cmd
}

func newTTL() *cobra.Command {
	var f storeFlags
	cmd := dataCmd(&cobra.Command{
		Use:   "ttl KEY",
		Short: "Print the time KEY has left, or \"no expiry\"",
		Long: `ttl prints the time KEY has left, or "no expiry"; --json prints
{"key", "expires", "ttl_ms"} (ttl_ms only when it expires). An absent key
fails with exit code 3.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKey(cmd, &f, args[0], func(ctx context.Context, s strata.Store, k []byte) error {
				ttl, err := strata.TTL(ctx, s, k)
				if err != nil {
					return f.keyErr("ttl", k, err)
				}
				out := cmd.OutOrStdout()
				if f.json {
					m := map[string]any{"expires": ttl != strata.NoExpiry}
					f.putJSON(m, "key", k)
					if ttl != strata.NoExpiry {
						m["ttl_ms"] = ttl.Milliseconds()
					}
					return printJSON(out, m)
				}
				if ttl == strata.NoExpiry {
					fmt.Fprintln(out, "no expiry")
				} else {
					fmt.Fprintln(out, ttl.Round(time.Millisecond))
				}
				return nil
			})
		},
	})
	f.register(cmd)
	f.registerJSON(cmd)
	return cmd
}

func newStats() *cobra.Command {
	var f storeFlags
	cmd := dataCmd(&cobra.Command{
		Use:   "stats",
		Short: "Print the store's counters and backend readings",
		Long: `stats checks that the store answers, then prints its counters (those of
this command's own connection) and the backend's readings, such as the
number of keys and the backend's gauges; --json prints them as one JSON
object with the same names.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &f, func(ctx context.Context, s strata.Store) error {
				if err := strata.Ping(ctx, s); err != nil {
					return err
				}
				st, ok := strata.StatsOf(s)
				if !ok {
					return fmt.Errorf("%w: the store reports no stats", strata.ErrUnsupported)
				}
				if f.json {
					return printJSON(cmd.OutOrStdout(), statsJSON(st))
				}
				printStats(cmd.OutOrStdout(), st)
				return nil
			})
		},
	})
	f.register(cmd)
	f.registerJSON(cmd)
	return cmd
}

// statsJSON is what stats --json prints: the names of the text output.
func statsJSON(st strata.Stats) map[string]any {
	gauges := st.Gauges
	if gauges == nil {
		gauges = map[string]float64{}
	}
	return map[string]any{
		"backend": st.Backend, "keys": st.Keys,
		"gets": st.Gets, "hits": st.Hits, "misses": st.Misses, "hit_rate": st.HitRate(),
		"puts": st.Puts, "deletes": st.Deletes, "errors": st.Errors,
		"bytes_read": st.BytesRead, "bytes_written": st.BytesWritten,
		"gauges": gauges,
	}
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
