// Command strata-ycsb runs go-ycsb (github.com/pingcap/go-ycsb) workloads
// against strata stores (the "strata" database of package
// github.com/strata-kv/strata/bench/ycsb) and against go-ycsb's own Redis
// binding ("redis"), with go-ycsb's client and measurements: the same
// load and run commands as go-ycsb's own command, without its other
// bindings.
//
//	strata-ycsb load|run DB [-P workload-file]... [-p name=value]... [-threads N]
//
// For example:
//
//	strata-ycsb load strata -P workloads/workloada -p strata.url=redis://127.0.0.1:6379/0
//	strata-ycsb run redis -P workloads/workloada -p redis.addr=127.0.0.1:6379 -threads 16
//
// scripts/ycsb.sh runs the comparison of docs/BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/client"
	"github.com/pingcap/go-ycsb/pkg/measurement"
	"github.com/pingcap/go-ycsb/pkg/prop"
	goycsb "github.com/pingcap/go-ycsb/pkg/ycsb"

	_ "github.com/pingcap/go-ycsb/db/redis"     // go-ycsb's Redis binding: "redis"
	_ "github.com/pingcap/go-ycsb/pkg/workload" // the core workload

	_ "github.com/strata-kv/strata/bench/ycsb" // "strata"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: strata-ycsb load|run DB [-P workload-file]... [-p name=value]... [-threads N]")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 3 || (os.Args[1] != "load" && os.Args[1] != "run") {
		usage()
	}
	command, dbName := os.Args[1], os.Args[2]
	fs := flag.NewFlagSet(command, flag.ExitOnError)
	var files, values list
	fs.Var(&files, "P", "a workload property file (repeatable)")
	fs.Var(&values, "p", "a property, name=value (repeatable)")
	threads := fs.Int("threads", 0, "client goroutines (the threadcount property)")
	fs.Parse(os.Args[3:])
	if err := run(command, dbName, files, values, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "strata-ycsb:", err)
		os.Exit(1)
	}
}

func run(command, dbName string, files, values []string, threads int) error {
	props := properties.NewProperties()
	if len(files) > 0 {
		p, err := properties.LoadFiles(files, properties.UTF8, false)
		if err != nil {
			return err
		}
		props = p
	}
	for _, v := range values {
		name, val, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("property %q: want name=value", v)
		}
		props.Set(name, val)
	}
	props.Set(prop.DoTransactions, strconv.FormatBool(command == "run"))
	props.Set(prop.Command, command)
	if threads > 0 {
		props.Set(prop.ThreadCount, strconv.Itoa(threads))
	}
	if _, ok := props.Get(prop.ThreadCount); !ok {
		props.Set(prop.ThreadCount, "1")
	}
	props.Set(prop.TableName, props.GetString(prop.TableName, prop.TableNameDefault))
	measurement.InitMeasure(props)

	workloadName := props.GetString(prop.Workload, "core")
	wc := goycsb.GetWorkloadCreator(workloadName)
	if wc == nil {
		return fmt.Errorf("workload %q is not registered", workloadName)
	}
	w, err := wc.Create(props)
	if err != nil {
		return fmt.Errorf("workload %s: %w", workloadName, err)
	}
	defer w.Close()
	dc := goycsb.GetDBCreator(dbName)
	if dc == nil {
		return fmt.Errorf("database %q is not registered (strata, redis)", dbName)
	}
	db, err := dc.Create(props)
	if err != nil {
		return fmt.Errorf("database %s: %w", dbName, err)
	}
	defer db.Close()

	// maxexecutiontime (seconds), which go-ycsb's client does not honor:
	// the workers stop after it, each once its operation in flight is done.
	ctx := context.Background()
	if secs := props.GetInt64(prop.MaxExecutiontime, 0); secs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(secs)*time.Second)
		defer cancel()
	}
	c := client.NewClient(props, w, client.DbWrapper{DB: detached{db}})
	start := time.Now()
	c.Run(ctx)
	fmt.Printf("Run finished, takes %s\n", time.Since(start))
	measurement.Output()
	return nil
}

// detached runs each operation to its end, whatever becomes of the
// context of the run: the deadline of maxexecutiontime stops the workers
// between operations, not in the middle of one.
type detached struct{ goycsb.DB }

func (d detached) Read(ctx context.Context, table, key string, fields []string) (map[string][]byte, error) {
	return d.DB.Read(context.WithoutCancel(ctx), table, key, fields)
}

func (d detached) Scan(ctx context.Context, table, start string, n int, fields []string) ([]map[string][]byte, error) {
	return d.DB.Scan(context.WithoutCancel(ctx), table, start, n, fields)
}

func (d detached) Update(ctx context.Context, table, key string, values map[string][]byte) error {
	return d.DB.Update(context.WithoutCancel(ctx), table, key, values)
}

func (d detached) Insert(ctx context.Context, table, key string, values map[string][]byte) error {
	return d.DB.Insert(context.WithoutCancel(ctx), table, key, values)
}

func (d detached) Delete(ctx context.Context, table, key string) error {
	return d.DB.Delete(context.WithoutCancel(ctx), table, key)
}
