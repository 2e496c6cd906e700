package redistrack

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestReadResp(t *testing.T) {
	in := "+OK\r\n" +
		"-ERR bad\r\n" +
		":-42\r\n" +
		"$3\r\nabc\r\n" +
		"$-1\r\n" +
		"_\r\n" +
		"%1\r\n+server\r\n+redis\r\n" +
		">2\r\n$10\r\ninvalidate\r\n*2\r\n$3\r\nk:1\r\n$0\r\n\r\n" +
		">2\r\n$10\r\ninvalidate\r\n_\r\n" +
		"|1\r\n+ttl\r\n:3\r\n+after-attribute\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	next := func() respValue {
		t.Helper()
		v, err := readResp(r)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := next(); v.kind != '+' || v.text() != "OK" {
		t.Fatalf("simple string: %+v", v)
	}
	if v := next(); v.err() == nil {
		t.Fatalf("error: %+v", v)
	}
	if v := next(); v.num != -42 {
		t.Fatalf("integer: %+v", v)
	}
	if v := next(); !v.isString() || v.text() != "abc" {
		t.Fatalf("bulk: %+v", v)
	}
	if v := next(); !v.null {
		t.Fatalf("null bulk: %+v", v)
	}
	if v := next(); !v.null {
		t.Fatalf("null: %+v", v)
	}
	if v := next(); v.kind != '%' || len(v.elems) != 2 || v.elems[1].text() != "redis" {
		t.Fatalf("map: %+v", v)
	}
	v := next()
	if v.kind != '>' || v.elems[0].text() != "invalidate" || len(v.elems[1].elems) != 2 ||
		v.elems[1].elems[0].text() != "k:1" || !v.elems[1].elems[1].isString() || len(v.elems[1].elems[1].str) != 0 {
		t.Fatalf("push: %+v", v)
	}
	if v := next(); v.kind != '>' || !v.elems[1].null {
		t.Fatalf("flush push: %+v", v)
	}
	if v := next(); v.text() != "after-attribute" {
		t.Fatalf("attribute not skipped: %+v", v)
	}
	for _, bad := range []string{"?x\r\n", "$5\r\nab\r\n", "*-2\r\n", "$99999999999\r\n", ":x\r\n", "+no-crlf\n", "#x\r\n"} {
		if _, err := readResp(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("readResp(%q) succeeded", bad)
		}
	}
	deep := strings.Repeat("*1\r\n", maxRespDepth+2) + ":1\r\n"
	if _, err := readResp(bufio.NewReader(strings.NewReader(deep))); err == nil {
		t.Error("readResp accepted nesting past the limit")
	}
}

func TestAppendCommand(t *testing.T) {
	got := string(appendCommand(nil, "CLIENT", "TRACKING", ""))
	if want := "*3\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$0\r\n\r\n"; got != want {
		t.Fatalf("appendCommand = %q, want %q", got, want)
	}
	v, err := readResp(bufio.NewReader(bytes.NewReader([]byte(got))))
	if err != nil || len(v.elems) != 3 || v.elems[1].text() != "TRACKING" {
		t.Fatalf("round trip: %+v, %v", v, err)
	}
}

// FuzzReadResp feeds arbitrary bytes to the reader: it must return a value
// or an error, never panic or allocate without bound.
func FuzzReadResp(f *testing.F) {
	for _, s := range []string{"+OK\r\n", ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", "%1\r\n+a\r\n:1\r\n", "|1\r\n+a\r\n+b\r\n+c\r\n", "*3\r\n$-1\r\n_\r\n#t\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 64)
		for range 16 {
			if _, err := readResp(r); err != nil {
				return
			}
		}
	})
}
