package ycsb

import (
	"context"
	"maps"
	"testing"

	"github.com/magiconair/properties"
)

// TestLayouts runs a record's life through both layouts on the memory
// store: insert, read all or some fields, update one, delete.
func TestLayouts(t *testing.T) {
	for _, layout := range []string{"field", "record"} {
		t.Run(layout, func(t *testing.T) {
			p := properties.NewProperties()
			p.Set(PropURL, "mem://")
			p.Set(PropLayout, layout)
			p.Set("fieldcount", "3")
			d, err := creator{}.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctx := context.Background()
			rec := map[string][]byte{"field0": []byte("a"), "field1": []byte(""), "field2": []byte("c")}
			if err := d.Insert(ctx, "t", "k", rec); err != nil {
				t.Fatal(err)
			}
			got, err := d.Read(ctx, "t", "k", nil)
			if err != nil || !maps.EqualFunc(got, rec, func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Fatalf("Read = %q, %v; want %q", got, err, rec)
			}
			if err := d.Update(ctx, "t", "k", map[string][]byte{"field1": []byte("B")}); err != nil {
				t.Fatal(err)
			}
			got, err = d.Read(ctx, "t", "k", []string{"field1", "field2"})
			if err != nil || len(got) != 2 || string(got["field1"]) != "B" || string(got["field2"]) != "c" {
				t.Fatalf("Read after Update = %q, %v", got, err)
			}
			if err := d.Delete(ctx, "t", "k"); err != nil {
				t.Fatal(err)
			}
			if got, err := d.Read(ctx, "t", "k", nil); err != nil || len(got) != 0 {
				t.Fatalf("Read after Delete = %q, %v; want no fields", got, err)
			}
		})
	}
	p := properties.NewProperties()
	p.Set(PropURL, "mem://")
	p.Set(PropLayout, "rows")
	if _, err := (creator{}).Create(p); err == nil {
		t.Fatal("an unknown layout was accepted")
	}
}
