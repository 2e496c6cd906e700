package pebble_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/pebble"
)

// TestMain runs the children of the process tests (see proc) or the tests.
func TestMain(m *testing.M) { proc.Main(m) }

// proc runs this test binary again as a child that writes to or holds a
// store.
var proc = storetest.Process{Env: "STRATA_PEBBLE_TEST", Open: open}

// TestCrashSafety kills a child that writes to the same directory with
// SIGKILL at random points, many times, and checks after each kill that
// Pebble's level checker finds nothing wrong, that every write the child
// acknowledged is there, and that every commit is wholly there or wholly
// absent (see storetest.Process.CrashSafety).
func TestCrashSafety(t *testing.T) { proc.CrashSafety(t, checkLevels) }

// checkLevels runs Pebble's level checker on the database in dir.
func checkLevels(t *testing.T, dir string) {
	t.Helper()
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quiet{}})
	if err != nil {
		t.Fatalf("raw pebble open after the crash: %v", err)
	}
	err = db.CheckLevels(nil)
	db.Close()
	if err != nil {
		t.Fatalf("CheckLevels after the crash: %v", err)
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)         {}
func (quiet) Errorf(f string, args ...any) { pebbledb.DefaultLogger.Errorf(f, args...) }
func (quiet) Fatalf(f string, args ...any) { pebbledb.DefaultLogger.Fatalf(f, args...) }

// TestLockedByAnotherProcess opens a directory a child process holds: Open
// must fail at once with ErrUnavailable, naming the lock.
func TestLockedByAnotherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locked")
	release := proc.Hold(t, dir)
	s, err := pebble.Open(dir, nil)
	if err == nil {
		s.Close()
		t.Fatal("Open of a directory another process holds succeeded")
	}
	if !errors.Is(err, strata.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("Open of a locked directory: %v, want ErrUnavailable saying it is locked", err)
	}
	t.Logf("Open: %v", err)
	// The same in one process: a second Store on an open directory.
	release()
	first, err := waitOpen(t, dir)
	if err != nil {
		t.Fatalf("Open after the child released the directory: %v", err)
	}
	defer first.Close()
	second, err := pebble.Open(dir, nil)
	if err == nil {
		second.Close()
		t.Fatal("a second Open in the same process succeeded")
	}
	if !errors.Is(err, strata.ErrUnavailable) {
		t.Fatalf("second Open in the same process: %v, want ErrUnavailable", err)
	}
}

// waitOpen opens dir, retrying while the child that held it exits.
func waitOpen(t *testing.T, dir string) (*pebble.Store, error) {
	t.Helper()
	var s *pebble.Store
	var err error
	storetest.WaitFor(t, "the child to release the directory", func() bool {
		s, err = pebble.Open(dir, nil)
		return !errors.Is(err, strata.ErrUnavailable)
	})
	return s, err
}
