package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

// skipAll is whether Skip takes b as one whole JSON document.
func skipAll(b []byte) bool {
	s := New(b)
	s.Skip()
	return s.End()
}

// validCases are documents both ways of reading must take or refuse
// alike; the fuzz test starts from them.
var validCases = []string{
	`{}`, `[]`, `{"a":1}`, ` {"a" : [1, -2.5e+3, 0, -0, 0.5E-7, "x", true, false, null, {}, []]} `,
	`"plain"`, `"esc \" \\ \/ \b \f \n \r \t \u00e9 \uD834\uDD1E"`, "\"\xff invalid utf-8 is no error\"",
	`0`, `-1`, `123456789012345678901234567890`, `1e400`, `{"a":{"b":{"c":[[[]]]}}}`,
	// refused by both
	``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{,}`, `[,1]`, `{"a"}`, `{"a":}`, `{1:2}`, `{"a":1 "b":2}`,
	`01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `0x10`, `tru`, `nul`, `truex`, `nan`,
	`"unterminated`, `"bad \x escape"`, `"\u12"`, `"\u12G4"`, "\"tab\there\"", `{"a":1}}`, `[1] [2]`,
	`{"a":1}x`, "\x00", `[[[[]]]`, `{"a":[}`, `[{]}`, `{"a":[1}]`,
}

// TestSkipValidates: Skip takes exactly what encoding/json takes as
// valid JSON.
func TestSkipValidates(t *testing.T) {
	for _, c := range validCases {
		if got, want := skipAll([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("%q: Skip took it: %v, json.Valid: %v", c, got, want)
		}
	}
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if skipAll([]byte(deep)) {
		t.Errorf("nesting deeper than %d: taken, want given up", maxDepth)
	}
}

func FuzzSkipValidates(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := skipAll(b), json.Valid(b); got && !want || !got && want && depth(b) < maxDepth {
			t.Errorf("%q: Skip took it: %v, json.Valid: %v", b, got, want)
		}
	})
}

// depth is an upper bound of b's nesting.
func depth(b []byte) int { return strings.Count(string(b), "[") + strings.Count(string(b), "{") }

// TestValues: the values a caller reads are what encoding/json gives,
// and what it cannot give so makes the Scanner give up.
func TestValues(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		int  bool // read with Int, else String
		want any  // nil: give up
	}{
		{`"abc"`, false, "abc"},
		{`"é ü"`, false, "é ü"},
		{`"a\nb"`, false, nil},    // escaped: encoding/json unescapes it
		{"\"\xffx\"", false, nil}, // encoding/json rewrites invalid UTF-8
		{"\"a\x01\"", false, nil}, // a control character
		{`12`, false, nil},
		{`12`, true, int64(12)},
		{` -12 `, true, int64(-12)},
		{`9223372036854775807`, true, int64(1<<63 - 1)},
		{`-9223372036854775808`, true, int64(-1 << 63)},
		{`9223372036854775808`, true, nil}, // overflows int64
		{`1.0`, true, nil},                 // encoding/json refuses it for an integer
		{`1e2`, true, nil},
		{`012`, true, nil},
		{`-`, true, nil},
		{`"12"`, true, nil},
	} {
		s := New([]byte(tc.doc))
		var got any
		if tc.int {
			got = s.Int()
		} else {
			got = s.String()
		}
		ok := s.End()
		switch {
		case tc.want == nil && ok:
			t.Errorf("%s: read %v, want it given up", tc.doc, got)
		case tc.want != nil && (!ok || got != tc.want):
			t.Errorf("%s: read %v (ok %v), want %v", tc.doc, got, ok, tc.want)
		}
	}
	for doc, want := range map[string]uint64{`18446744073709551615`: 1<<64 - 1, `0`: 0} {
		if s := New([]byte(doc)); s.Uint() != want || !s.End() {
			t.Errorf("%s: Uint not %d", doc, want)
		}
	}
	for _, doc := range []string{`18446744073709551616`, `-1`, `-0`} {
		s := New([]byte(doc))
		if s.Uint(); s.End() {
			t.Errorf("%s: Uint taken, want given up", doc)
		}
	}
}

// TestObject: More, Key and the commas between members.
func TestObject(t *testing.T) {
	read := func(doc string) (keys []string, ok bool) {
		s := New([]byte(doc))
		if s.BeginObject() {
			for s.More() {
				keys = append(keys, string(s.Key()))
				s.Skip()
			}
		}
		return keys, s.End()
	}
	if keys, ok := read(` { "a" : 1 , "b":{"x":[]} ,"c":{}} `); !ok || strings.Join(keys, ",") != "a,b,c" {
		t.Errorf("keys %v, ok %v", keys, ok)
	}
	for _, doc := range []string{`{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a\"":1}`, `{"a":1`, `{"a":1]`, `[1]`} {
		if keys, ok := read(doc); ok {
			t.Errorf("%s: taken (keys %v), want given up", doc, keys)
		}
	}
}

// TestOther: a key that differs from a known one only by case, or that
// encoding/json might fold to one (not ASCII), is no other key.
func TestOther(t *testing.T) {
	for key, want := range map[string]bool{"mounts": true, "Rootfs": false, "ROOTFS": false, "rootfſ": false, "rootf": true} {
		s := New(nil)
		if got := s.Other([]byte(key), "rootfs", "labels"); got != want || s.Failed() == want {
			t.Errorf("Other(%q): %v (failed %v), want %v", key, got, s.Failed(), want)
		}
	}
}
