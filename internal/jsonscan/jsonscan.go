// Package jsonscan reads the few values a caller wants from a JSON
// document in one pass, checking the rest for syntax only, without
// building it. `list` reads libcontainer's state.json of every container
// this way: 3 KB, of which it wants a dozen values; encoding/json checks
// the whole document, then walks it again to decode it, and allocates
// on the way.
//
// It accepts a strict subset of what encoding/json accepts, on which the
// caller can give the same values encoding/json would. It gives up on
// anything else: a syntax error, a string it would have to unescape, a
// number that is not an integer where one is wanted, a value of the wrong
// type. A caller that sees it give up decodes the document with
// encoding/json instead, which then gives the value or the error it
// always gave. So jsonscan decides nothing about a document but how fast
// it is read.
//
// A Scanner is used as a cursor: BeginObject, then More and Key for each
// member, and for each value one of String, Int, Uint, Bool, Null,
// BeginObject, BeginArray or Skip; End at the end. Once it gave up every
// call is a no-op, and End says so.
package jsonscan

import (
	"unicode/utf8"
)

// maxDepth is how deeply nested a value Skip checks; deeper, it gives up
// (encoding/json allows 10000).
const maxDepth = 256

// Scanner reads one JSON document.
type Scanner struct {
	b []byte
	i int
	// first: no member or element of the innermost open object or array
	// has been read yet (the next needs no comma).
	first bool
	depth int
	// objects has bit n set while the open value at depth n+1 is an
	// object, not an array.
	objects [maxDepth / 64]uint64
	bad     bool
}

// New returns a Scanner at the start of b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// Fail makes s give up: for a caller that met something it cannot
// decode as encoding/json would (a duplicate key, say).
func (s *Scanner) Fail() { s.bad = true; s.i = len(s.b) }

// Failed says whether s has given up.
func (s *Scanner) Failed() bool { return s.bad }

// End says whether the document was read to its end without s giving up:
// only white space may follow the top-level value.
func (s *Scanner) End() bool {
	s.ws()
	return !s.bad && s.depth == 0 && s.i == len(s.b)
}

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next byte after white space, 0 at the end.
func (s *Scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// BeginObject reads the '{' of an object; false (and s gives up) if the
// next value is not one.
func (s *Scanner) BeginObject() bool { return s.begin('{') }

// BeginArray reads the '[' of an array, as BeginObject.
func (s *Scanner) BeginArray() bool { return s.begin('[') }

func (s *Scanner) begin(c byte) bool {
	if s.bad || s.peek() != c || s.depth >= maxDepth {
		s.Fail()
		return false
	}
	s.i++
	bit := uint64(1) << (s.depth % 64)
	if c == '{' {
		s.objects[s.depth/64] |= bit
	} else {
		s.objects[s.depth/64] &^= bit
	}
	s.depth++
	s.first = true
	return true
}

// More says whether the open object or array has another member or
// element, reading the comma before it; at its end it reads the closing
// bracket and returns false.
func (s *Scanner) More() bool {
	if s.bad {
		return false
	}
	switch c := s.peek(); c {
	case '}', ']':
		if s.depth == 0 || (c == '}') != s.inObject() {
			s.Fail()
			return false
		}
		s.i++
		s.depth--
		s.first = false // the enclosing one has its member: this
		return false
	case ',':
		if s.first {
			s.Fail()
			return false
		}
		s.i++
	default:
		if !s.first {
			s.Fail()
			return false
		}
	}
	s.first = false
	return true
}

// inObject says whether the innermost open value is an object.
func (s *Scanner) inObject() bool {
	n := s.depth - 1
	return s.objects[n/64]&(1<<(n%64)) != 0
}

// Key reads an object member's key and its colon. The key aliases the
// document; a key with escapes makes s give up.
func (s *Scanner) Key() []byte {
	k, ok := s.plainString()
	if !ok {
		s.Fail()
		return nil
	}
	if s.peek() != ':' {
		s.Fail()
		return nil
	}
	s.i++
	return k
}

// plainString reads a string that has no escapes and no control
// characters and is valid UTF-8, which encoding/json would take as it
// is; ok is false for any other.
func (s *Scanner) plainString() (_ []byte, ok bool) {
	if s.bad || s.peek() != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// String reads a string value; one with escapes or invalid UTF-8 makes s
// give up (encoding/json would rewrite it).
func (s *Scanner) String() string {
	v, ok := s.plainString()
	if !ok {
		s.Fail()
		return ""
	}
	return string(v)
}

// Null reads a null if one is next and says so.
func (s *Scanner) Null() bool {
	if s.bad || s.peek() != 'n' {
		return false
	}
	return s.literal("null")
}

// Bool reads true or false.
func (s *Scanner) Bool() bool {
	switch s.peek() {
	case 't':
		return s.literal("true")
	case 'f':
		s.literal("false")
	default:
		s.Fail()
	}
	return false
}

func (s *Scanner) literal(lit string) bool {
	if s.bad || len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		s.Fail()
		return false
	}
	s.i += len(lit)
	return true
}

// Int reads an integer that fits an int64: digits with an optional
// minus sign, no fraction or exponent (encoding/json refuses those for
// an integer field).
func (s *Scanner) Int() int64 {
	neg := s.peek() == '-'
	if neg {
		s.i++
	}
	u, ok := s.digits()
	switch {
	case !ok || (!neg && u > 1<<63-1) || (neg && u > 1<<63):
		s.Fail()
		return 0
	case neg:
		return -int64(u)
	}
	return int64(u)
}

// Uint reads an integer that fits a uint64, as Int.
func (s *Scanner) Uint() uint64 {
	if s.peek() == '-' {
		s.Fail()
		return 0
	}
	u, ok := s.digits()
	if !ok {
		s.Fail()
		return 0
	}
	return u
}

// digits reads what JSON allows as an integer's digits (no leading
// zero) and no fraction or exponent after them.
func (s *Scanner) digits() (uint64, bool) {
	if s.bad || s.i >= len(s.b) {
		return 0, false
	}
	start := s.i
	var u uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if u > (1<<64-1-d)/10 {
			return 0, false
		}
		u = u*10 + d
		s.i++
	}
	n := s.i - start
	if n == 0 || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return u, true
}

// Skip reads the next value whatever it is, checking only that it is
// valid JSON.
func (s *Scanner) Skip() {
	switch c := s.peek(); {
	case s.bad:
	case c == '{':
		s.begin('{')
		for s.More() {
			s.skipString()
			if s.peek() != ':' {
				s.Fail()
				return
			}
			s.i++
			s.Skip()
		}
	case c == '[':
		s.begin('[')
		for s.More() {
			s.Skip()
		}
	case c == '"':
		s.skipString()
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		s.skipNumber()
	default:
		s.Fail()
	}
}

// skipString reads any valid JSON string. Invalid UTF-8 is not an error
// to encoding/json (it replaces it), so it is none here.
func (s *Scanner) skipString() {
	if s.bad || s.peek() != '"' {
		s.Fail()
		return
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return
		case c < 0x20:
			s.Fail()
			return
		case c == '\\':
			j++
			if j >= len(s.b) {
				s.Fail()
				return
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					s.Fail()
					return
				}
				for _, h := range s.b[j+1 : j+5] {
					if !isHex(h) {
						s.Fail()
						return
					}
				}
				j += 4
			default:
				s.Fail()
				return
			}
		}
	}
	s.Fail() // unterminated
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber reads a number as JSON's grammar has it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) skipNumber() {
	b, i := s.b, s.i
	run := func() int { // digits from i on
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	if n := run(); n == 0 || (n > 1 && b[start] == '0') {
		s.Fail()
		return
	}
	if i < len(b) && b[i] == '.' {
		i++
		if run() == 0 {
			s.Fail()
			return
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if run() == 0 {
			s.Fail()
			return
		}
	}
	s.i = i
}

// Other says whether an object key that is none of known, byte for byte,
// is surely none of them to encoding/json either, which matches keys to
// fields without regard to case, Unicode's included. When it is not
// sure (the key is not ASCII, or equals one of known but for case), it
// makes s give up and returns false.
func (s *Scanner) Other(key []byte, known ...string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			s.Fail()
			return false
		}
	}
	for _, k := range known {
		if equalFoldASCII(key, k) {
			s.Fail()
			return false
		}
	}
	return true
}

func equalFoldASCII(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
