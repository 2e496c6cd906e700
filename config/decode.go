package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
)

// This file is the one strict decoder of the package: every table of a
// config file ([state], [checkpoint] and the tables under [state]) is read
// by decodeTable into a struct whose fields say which keys they take.
//
// A field takes the key of its toml tag and the keys of its alias tag
// (comma-separated), the other spellings of the same setting:
//
//	DialTimeout time.Duration `toml:"connect_timeout" alias:"connect_timeout_secs"`
//
// A time.Duration key is a quoted duration ("5s", "250ms"), except a key
// ending in _secs or _ms, which is a whole number of seconds or
// milliseconds. Fields of type string, bool, *bool, int, int64 and
// []string take the TOML values of those types. A key that no field takes,
// a value of the wrong type, or two spellings of one field are errors;
// values are never quoted in them except durations, so that a password
// given where a number belongs does not end up in a log.

var durationType = reflect.TypeFor[time.Duration]()

// fieldKeys is one decodable field: its index and the keys that set it,
// the toml tag's first.
type fieldKeys struct {
	index int
	keys  []string
}

// fieldsOf returns the decodable fields of the struct type t.
func fieldsOf(t reflect.Type) []fieldKeys {
	var out []fieldKeys
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		keys := []string{name}
		if a := f.Tag.Get("alias"); a != "" {
			keys = append(keys, strings.Split(a, ",")...)
		}
		out = append(out, fieldKeys{index: i, keys: keys})
	}
	return out
}

// accepted lists the keys of fields for an error message: "a, b (or b_secs), c".
func accepted(fields []fieldKeys) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.keys[0]
		if len(f.keys) > 1 {
			names[i] += " (or " + strings.Join(f.keys[1:], ", ") + ")"
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// decodeTable sets the fields of dst (a pointer to a struct) from the keys
// of raw, the TOML table named path ("state.redis"). Fields whose keys are
// absent keep their values. With skipTables, keys whose values are tables
// are left to the caller (the tables under [state]). It returns every
// problem, each naming its key.
func decodeTable(path string, raw map[string]any, dst any, skipTables bool) []error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return []error{fmt.Errorf("%s: cannot decode into %T (want a pointer to a struct)", path, dst)}
	}
	v = v.Elem()
	fields := fieldsOf(v.Type())
	byKey := map[string]fieldKeys{}
	for _, f := range fields {
		for _, k := range f.keys {
			byKey[k] = f
		}
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		val := raw[k]
		if _, isTable := val.(map[string]any); isTable && skipTables {
			continue
		}
		f, ok := byKey[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%s.%s: unknown key (accepted: %s)", path, k, accepted(fields)))
			continue
		}
		var given []string
		for _, other := range f.keys {
			if _, ok := raw[other]; ok {
				given = append(given, other)
			}
		}
		if len(given) > 1 {
			if k == given[0] { // once per field
				errs = append(errs, fmt.Errorf("%s.%s: two spellings of one setting; give one",
					path, strings.Join(given, " and "+path+".")))
			}
			continue
		}
		if err := set(v.Field(f.index), k, val); err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w", path, k, err))
		}
	}
	return errs
}

// set stores the TOML value val of key into the field fv.
func set(fv reflect.Value, key string, val any) error {
	if fv.Type() == durationType {
		d, err := duration(key, val)
		if err == nil {
			fv.SetInt(int64(d))
		}
		return err
	}
	switch fv.Kind() {
	case reflect.String:
		s, ok := val.(string)
		if !ok {
			return want("a string", val)
		}
		fv.SetString(s)
	case reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			return want("true or false", val)
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, ok := val.(int64)
		if !ok {
			return want("an integer", val)
		}
		if fv.OverflowInt(n) {
			return errors.New("integer out of range")
		}
		fv.SetInt(n)
	case reflect.Pointer:
		if fv.Type().Elem().Kind() != reflect.Bool {
			return fmt.Errorf("cannot decode into a %s field", fv.Type())
		}
		b, ok := val.(bool)
		if !ok {
			return want("true or false", val)
		}
		fv.Set(reflect.ValueOf(&b))
	case reflect.Slice:
		if fv.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot decode into a %s field", fv.Type())
		}
		arr, ok := val.([]any)
		if !ok {
			return want(`an array of strings such as ["a", "b"]`, val)
		}
		out := reflect.MakeSlice(fv.Type(), len(arr), len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("element %d: %w", i, want("a string", e))
			}
			out.Index(i).SetString(s)
		}
		fv.Set(out)
	default:
		return fmt.Errorf("cannot decode into a %s field", fv.Type())
	}
	return nil
}

// duration reads the value of a duration key: a whole number of the unit
// its name ends in (_secs, _ms), else a quoted duration.
func duration(key string, val any) (time.Duration, error) {
	unit, name := time.Duration(0), ""
	switch {
	case strings.HasSuffix(key, "_secs"):
		unit, name = time.Second, "seconds"
	case strings.HasSuffix(key, "_ms"):
		unit, name = time.Millisecond, "milliseconds"
	}
	if unit != 0 {
		n, ok := val.(int64)
		if !ok {
			return 0, want("a whole number of "+name, val)
		}
		if n < 0 || n > math.MaxInt64/int64(unit) {
			return 0, fmt.Errorf("%d %s is out of range (0 to %d)", n, name, math.MaxInt64/int64(unit))
		}
		return time.Duration(n) * unit, nil
	}
	s, ok := val.(string)
	if !ok {
		return 0, want(`a quoted duration such as "500ms" or "5s"`, val)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf(`%q is not a non-negative duration such as "500ms" or "5s"`, s)
	}
	return d, nil
}

// want is the error of a value of the wrong type. It names the value's
// TOML type, never the value.
func want(what string, val any) error {
	return fmt.Errorf("want %s, not %s", what, tomlType(val))
}

// tomlType names the TOML type of a decoded value.
func tomlType(val any) string {
	switch val.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("a %T", val)
}
