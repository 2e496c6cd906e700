package bolt_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/bolt"
)

// TestMain runs the children of the process tests (see proc) or the tests.
func TestMain(m *testing.M) { proc.Main(m) }

// proc runs this test binary again as a child that writes to or holds a
// store.
var proc = storetest.Process{Env: "STRATA_BOLT_TEST", Open: open}

// TestCrashSafety kills a child that writes to the same file with
// SIGKILL at random points, many times, and checks after each kill that
// bbolt's consistency check finds nothing wrong, that every write the child
// acknowledged is there, and that every commit is wholly there or wholly
// absent (see storetest.Process.CrashSafety).
func TestCrashSafety(t *testing.T) { proc.CrashSafety(t, verify) }

// TestLockedByAnotherProcess opens a file a child process holds: Open must
// fail with ErrUnavailable within its timeout, naming the lock.
func TestLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	release := proc.Hold(t, path)
	const timeout = 300 * time.Millisecond
	start := time.Now()
	s, err := bolt.Open(path, &bolt.Options{OpenTimeout: timeout})
	took := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("Open of a file another process holds succeeded")
	}
	if !errors.Is(err, strata.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("Open of a locked file: %v, want ErrUnavailable saying it is locked", err)
	}
	// bbolt retries the lock every 50ms and gives up a retry early.
	if took < timeout/2 || took > timeout+5*time.Second {
		t.Fatalf("Open of a locked file returned after %v, want about the %v timeout", took, timeout)
	}
	// Once the child lets go, the file opens.
	release()
	s, err = bolt.Open(path, &bolt.Options{OpenTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Open after the child released the file: %v", err)
	}
	s.Close()
}

// verify runs bbolt's consistency check on the file at path.
func verify(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("raw bbolt open after the crash: %v", err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatalf("tx.Check after the crash: %v", err)
	}
}
