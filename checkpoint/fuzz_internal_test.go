package checkpoint

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
)

// FuzzParseLocation: any string either parses into a location that names
// a directory or a bucket, or fails with strata.ErrInvalidConfig; never a
// panic, and never an error that shows a URL's password.
//
// CI: go test ./checkpoint -run '^$' -fuzz '^FuzzParseLocation$' -fuzztime 30s
func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{
		"/var/lib/ckpt", "ckpt", "file:///var/lib/ckpt", "file://localhost/x", "file://host/x",
		"s3://bucket", "s3://bucket/a/b/?endpoint=http://127.0.0.1:9000&region=us-east-1&use_path_style=true",
		"s3://bucket/p?orphan_age=1h", "s3://bucket/p?orphan_age=x", "s3://u:secret@bucket/p", "gs://b/p",
		"azblob://c/p?prefix=x", "s3://b/../x", "s3://b//x", "://", "s3://%zz", "file:///a\x00b", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		l, err := parseLocation(raw)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalidConfig) {
				t.Fatalf("parseLocation(%q) = %v, want ErrInvalidConfig", raw, err)
			}
			// "secret" is a password where it stands before an "@" (user
			// information, however the parser reads it); elsewhere (a
			// path, a host) it is not one.
			if strings.Count(raw, "secret") == 1 && strings.Contains(raw, "secret@") && strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows a password: %v", err)
			}
			return
		}
		switch l.scheme {
		case "file":
			if l.dir == "" {
				t.Fatalf("parseLocation(%q): a directory location without a directory", raw)
			}
		default:
			if l.bucket == "" || (l.prefix != "" && !strings.HasSuffix(l.prefix, "/")) || strings.Contains(l.prefix, "//") {
				t.Fatalf("parseLocation(%q) = %+v", raw, l)
			}
			if l.query.Has("prefix") || l.query.Has("orphan_age") || l.orphanAge < 0 {
				t.Fatalf("parseLocation(%q) kept its own parameters: %+v", raw, l)
			}
		}
	})
}

// FuzzParsePointer: a bucket's manifest object either parses into a
// pointer whose fields are all checked, or fails with strata.ErrCorrupt.
//
// CI: go test ./checkpoint -run '^$' -fuzz '^FuzzParsePointer$' -fuzztime 30s
func FuzzParsePointer(f *testing.F) {
	good := pointer{
		Format: pointerFormat, ID: "a", Data: "data/a.0123456789abcdef.ckpt", Size: 200,
		SHA256: "sha256:" + strings.Repeat("0f", 32),
		Manifest: Manifest{FormatVersion: 1, ID: "a", Entries: 1, RawBytes: 10, CompressedBytes: 100,
			Checksum: "sha256:" + strings.Repeat("1e", 32)},
	}
	js, _ := json.Marshal(good)
	f.Add("a", js)
	delta := good
	delta.Manifest.FormatVersion, delta.Manifest.Kind, delta.Manifest.Parent, delta.Manifest.Base = 2, KindDelta, "p", "p"
	delta.Manifest.Depth, delta.Manifest.ParentChecksum = 1, good.SHA256
	js, _ = json.Marshal(delta)
	f.Add("a", js)
	f.Add("b", js)
	f.Add("a", []byte(`{"format":1}`))
	f.Add("a", []byte(`{}{}`))
	f.Fuzz(func(t *testing.T, id string, data []byte) {
		if ValidateID(id) != nil {
			return
		}
		p, err := parsePointer(id, data)
		if err != nil {
			if !errors.Is(err, strata.ErrCorrupt) {
				t.Fatalf("parsePointer: %v, want ErrCorrupt", err)
			}
			return
		}
		if did, ok := parseDataKey(p.Data); !ok || did != id || p.ID != id || p.Manifest.ID != id || !validChecksum(p.SHA256) {
			t.Fatalf("accepted %+v for %q", p, id)
		}
		if err := p.Manifest.checkChain(p.Manifest.FormatVersion); err != nil {
			t.Fatalf("accepted a manifest whose chain fields are bad: %v", err)
		}
	})
}

// FuzzResolveChain: resolving a chain over any set of manifests ends (in
// at most MaxDepth steps), and either yields a chain whose every link
// continues the next, from a full checkpoint, or fails with
// strata.ErrCorrupt.
//
// CI: go test ./checkpoint -run '^$' -fuzz '^FuzzResolveChain$' -fuzztime 30s
func FuzzResolveChain(f *testing.F) {
	sum := func(c byte) string { return "sha256:" + strings.Repeat(string([]byte{c, c}), 32) }
	ms := []Manifest{
		{ID: "b", Checksum: sum('1')},
		{ID: "d1", Kind: KindDelta, Parent: "b", Base: "b", Depth: 1, ParentChecksum: sum('1'), Checksum: sum('2')},
		{ID: "d2", Kind: KindDelta, Parent: "d1", Base: "b", Depth: 2, ParentChecksum: sum('2'), Checksum: sum('3')},
	}
	js, _ := json.Marshal(ms)
	f.Add(js, "d2")
	ms[1].Parent = "d2"
	js, _ = json.Marshal(ms)
	f.Add(js, "d2")
	f.Fuzz(func(t *testing.T, data []byte, head string) {
		var ms []Manifest
		if json.Unmarshal(data, &ms) != nil || len(ms) > 100 {
			return
		}
		byID := map[string]Info{}
		for _, m := range ms {
			if ValidateID(m.ID) == nil {
				byID[m.ID] = Info{ID: m.ID, Manifest: m}
			}
		}
		in, ok := byID[head]
		if !ok {
			return
		}
		chain, err := resolveChain(in, byID)
		if err != nil {
			if !errors.Is(err, strata.ErrCorrupt) {
				t.Fatalf("resolveChain: %v, want ErrCorrupt", err)
			}
			return
		}
		if chain[0].Manifest.IsDelta() || chain[len(chain)-1].ID != head {
			t.Fatalf("chain %v does not run from a full checkpoint to %s", chain, head)
		}
		for i := 1; i < len(chain); i++ {
			if err := checkLink(chain[i].Manifest, chain[i-1].Manifest); err != nil {
				t.Fatalf("link %d: %v", i, err)
			}
		}
	})
}
