package checkpoint_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/stores/memory"
)

// A job checkpoints its state, "crashes", and a new process restores it.
func ExampleCoordinator() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "checkpoints")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	state := memory.New(nil)
	defer state.Close()
	state.Put(ctx, []byte("offset"), []byte("1042"), strata.NoExpiry)
	state.Put(ctx, []byte("window/17"), []byte("count=9"), strata.NoExpiry)
	c, err := checkpoint.New(state, &checkpoint.Options{Dir: dir, MaxCheckpoints: 3})
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.Checkpoint(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("checkpoint of", m.Entries, "entries from", m.Source)

	// After a restart: a fresh store, restored from the newest valid
	// checkpoint.
	fresh := memory.New(nil)
	defer fresh.Close()
	c2, err := checkpoint.New(fresh, &checkpoint.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := c2.RestoreLatest(ctx)
	if err != nil {
		log.Fatal(err)
	}
	offset, _ := fresh.Get(ctx, []byte("offset"))
	fmt.Println("restored", rep.Restored, "entries; same checkpoint:", rep.ID == m.ID, "; offset", string(offset))
	// Output:
	// checkpoint of 2 entries from memory
	// restored 2 entries; same checkpoint: true ; offset 1042
}

// Write and read a checkpoint through plain io interfaces.
func ExampleNewReader() {
	ctx := context.Background()
	s := memory.New(nil)
	defer s.Close()
	s.Put(ctx, []byte("a"), []byte("1"), strata.NoExpiry)
	s.Put(ctx, []byte("b"), []byte("2"), strata.NoExpiry)

	var file bytes.Buffer
	if _, err := checkpoint.WriteStore(ctx, &file, s, &checkpoint.WriterOptions{ID: "demo"}); err != nil {
		log.Fatal(err)
	}
	rd, err := checkpoint.NewReader(&file, nil)
	if err != nil {
		log.Fatal(err)
	}
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break // the whole file is verified
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s=%s expires=%d\n", r.Key, r.Value, r.ExpiresAt)
	}
	fmt.Println(rd.Manifest().ID, rd.Manifest().Entries)
	// Output:
	// a=1 expires=0
	// b=2 expires=0
	// demo 2
}
