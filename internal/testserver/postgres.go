package testserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const installPostgres = "apt-get install -y postgresql-15"

// Postgres is a running PostgreSQL server with trust authentication for
// the user postgres on loopback.
type Postgres struct {
	Addr string
	Port int
	Dir  string // data directory

	proc *process
	bin  string
	cred *syscall.Credential // the postgres user, when tests run as root
}

// postgresBin finds the directory of initdb and postgres, newest version
// first among /usr/lib/postgresql/*/bin.
func postgresBin(tb testing.TB) string {
	tb.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	p := need(tb, "initdb", installPostgres, dirs...)
	return filepath.Dir(p)
}

// StartPostgres initializes a database cluster and starts postgres on a
// free loopback port; both stop and are removed when tb ends. As root, they
// run as the postgres user, since initdb and postgres refuse root.
func StartPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	p := &Postgres{bin: postgresBin(tb)}
	// Not tb.TempDir: its parents are private to root, and postgres must
	// reach its data directory as another user.
	dir, err := os.MkdirTemp("", "strata-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	p.Dir = dir
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("testserver: running as root needs a postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	initdb := exec.Command(filepath.Join(p.bin, "initdb"), "-D", filepath.Join(dir, "data"),
		"-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("testserver: initdb: %v\n%s", err, out)
	}
	p.Port = freePort(tb, 0)
	p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port))
	p.run(tb)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("postgres %s log:\n%s", p.Addr, tail(p.proc.log.String()))
		}
		// SIGINT is PostgreSQL's fast shutdown.
		p.proc.stop(syscall.SIGINT, 10*time.Second)
	})
	return p
}

func (p *Postgres) run(tb testing.TB) {
	tb.Helper()
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", filepath.Join(p.Dir, "data"),
		"-p", strconv.Itoa(p.Port), "-k", p.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	p.proc = start(tb, "postgres "+p.Addr, cmd)
	waitUntil(tb, p.proc, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, p.DSN())
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
}

// DSN returns a connection string for the database postgres.
func (p *Postgres) DSN() string { return p.DSNFor("postgres") }

// DSNFor returns a connection string for database db.
func (p *Postgres) DSNFor(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", p.Addr, db)
}

// NewDatabase creates an empty database with a unique name and returns its
// DSN, so that tests can share one server.
func (p *Postgres) NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("t%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatal(err)
	}
	return p.DSNFor(name)
}

// Kill stops postgres with SIGKILL, as a crash would.
func (p *Postgres) Kill() { p.proc.stop(syscall.SIGKILL, time.Second) }

// Restart starts postgres again on the same port and data directory,
// killing a running one first.
func (p *Postgres) Restart(tb testing.TB) {
	tb.Helper()
	p.proc.stop(syscall.SIGINT, 10*time.Second)
	p.run(tb)
}
