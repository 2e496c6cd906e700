package redistrack

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// A minimal RESP3 codec for the tracking connections. go-redis exposes no
// way to block on a dedicated connection waiting for server pushes: its
// PubSub rejects the "invalidate" push, and its push processor runs only
// when a command reads or at a drainer tick, which would make the
// invalidation bound that tick. The tracking connection needs only to send
// a handful of commands and read replies and pushes, so it speaks RESP3
// itself (about 150 lines, fuzzed).

// respValue is one RESP3 value. Aggregates (array, set, push, map) hold
// their elements in elems (a map's keys and values alternate).
type respValue struct {
	kind  byte // '+', '-', ':', '$', '*', '_', '#', ',', '(', '!', '=', '%', '~', '>'
	str   []byte
	num   int64
	elems []respValue
	null  bool
}

// Limits that keep a hostile or corrupt stream from allocating without
// bound.
const (
	maxRespBulk  = 512 << 20
	maxRespElems = 1 << 20
	maxRespDepth = 8
)

var errRespProtocol = errors.New("redistrack: RESP protocol error")

// text returns the value as a string, for replies that are strings.
func (v respValue) text() string { return string(v.str) }

// isString reports whether v is a simple, bulk or verbatim string.
func (v respValue) isString() bool {
	return (v.kind == '+' || v.kind == '$' || v.kind == '=') && !v.null
}

// field returns the string value of key in the map v, "" if v is not a
// map or has no such string field.
func (v respValue) field(key string) string {
	if v.kind != '%' {
		return ""
	}
	for i := 0; i+1 < len(v.elems); i += 2 {
		if k, val := v.elems[i], v.elems[i+1]; k.isString() && k.text() == key && val.isString() {
			return val.text()
		}
	}
	return ""
}

// err returns the server error v carries, if any.
func (v respValue) err() error {
	if v.kind == '-' || v.kind == '!' {
		return fmt.Errorf("redistrack: redis replied: %s", v.str)
	}
	return nil
}

// readResp reads one value, skipping attributes ('|').
func readResp(r *bufio.Reader) (respValue, error) { return readRespDepth(r, 0) }

func readRespDepth(r *bufio.Reader, depth int) (respValue, error) {
	if depth > maxRespDepth {
		return respValue{}, fmt.Errorf("%w: nesting deeper than %d", errRespProtocol, maxRespDepth)
	}
	for {
		kind, err := r.ReadByte()
		if err != nil {
			return respValue{}, err
		}
		line, err := readLine(r)
		if err != nil {
			return respValue{}, err
		}
		v := respValue{kind: kind}
		switch kind {
		case '+', '-', '(', ',':
			v.str = line
			return v, nil
		case '#':
			if len(line) != 1 || (line[0] != 't' && line[0] != 'f') {
				return v, fmt.Errorf("%w: bad boolean %q", errRespProtocol, line)
			}
			v.str = line
			return v, nil
		case '_':
			v.null = true
			return v, nil
		case ':':
			v.num, err = strconv.ParseInt(string(line), 10, 64)
			if err != nil {
				return v, fmt.Errorf("%w: bad integer %q", errRespProtocol, line)
			}
			return v, nil
		case '$', '!', '=':
			n, err := respLen(line, maxRespBulk)
			if err != nil {
				return v, err
			}
			if n < 0 {
				v.null = true
				return v, nil
			}
			v.str = make([]byte, n+2)
			if _, err := io.ReadFull(r, v.str); err != nil {
				return v, err
			}
			if v.str[n] != '\r' || v.str[n+1] != '\n' {
				return v, fmt.Errorf("%w: bulk string not terminated", errRespProtocol)
			}
			v.str = v.str[:n]
			return v, nil
		case '*', '~', '>', '%', '|':
			n, err := respLen(line, maxRespElems)
			if err != nil {
				return v, err
			}
			if n < 0 {
				v.null = true
				return v, nil
			}
			if kind == '%' || kind == '|' {
				if n > maxRespElems/2 {
					return v, fmt.Errorf("%w: map of %d pairs", errRespProtocol, n)
				}
				n *= 2
			}
			v.elems = make([]respValue, 0, min(n, 1024))
			for range n {
				e, err := readRespDepth(r, depth+1)
				if err != nil {
					return v, err
				}
				v.elems = append(v.elems, e)
			}
			if kind == '|' {
				continue // an attribute precedes the value it describes
			}
			return v, nil
		default:
			return v, fmt.Errorf("%w: unknown type byte %q", errRespProtocol, kind)
		}
	}
}

// readLine reads up to CRLF and returns the line without it.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: line longer than %d bytes", errRespProtocol, r.Size())
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line not terminated by CRLF", errRespProtocol)
	}
	return append([]byte(nil), line[:len(line)-2]...), nil
}

// respLen parses a length, -1 for null, at most limit.
func respLen(line []byte, limit int) (int, error) {
	n, err := strconv.Atoi(string(line))
	if err != nil || n < -1 || n > limit {
		return 0, fmt.Errorf("%w: bad length %q", errRespProtocol, line)
	}
	return n, nil
}

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
