// Package trigram splits text into trigrams, the three-byte pieces by which
// both of the users package's built-in stores index search terms. A term of
// three bytes or more can only be a substring of a text that holds all of the
// term's trigrams, so the texts that hold every trigram of a term are a
// superset of those that contain it.
//
// Its functions keep no state and are safe for concurrent use.
package trigram

import (
	"fmt"
	"slices"
	"strings"
)

// T is three consecutive bytes of a text, the first in bits 16 to 23 and the
// last in bits 0 to 7: trigrams order as their bytes do.
type T uint32

// At returns the trigram of s[i:i+3]; s must hold them.
func At(s string, i int) T { return T(s[i])<<16 | T(s[i+1])<<8 | T(s[i+2]) }

// FromKey returns the trigram of the first three bytes of k, as Key writes
// them; k must hold them.
func FromKey(k []byte) T { return T(k[0])<<16 | T(k[1])<<8 | T(k[2]) }

// Key returns g's three bytes in a new slice.
func (g T) Key() []byte { return []byte{byte(g >> 16), byte(g >> 8), byte(g)} }

// String returns g's three bytes, quoted.
func (g T) String() string { return fmt.Sprintf("%q", g.Key()) }

// Append appends the trigrams of s to gs, one for each position in s,
// repeats included, and returns the result. A text of fewer than three
// bytes has none.
func Append(gs []T, s string) []T {
	for i := 0; i+3 <= len(s); i++ {
		gs = append(gs, At(s, i))
	}
	return gs
}

// Distinct returns the distinct trigrams of texts in increasing order.
func Distinct(texts []string) []T {
	gs := make([]T, 0, 64)
	for _, s := range Outer(texts) {
		gs = Append(gs, s)
	}
	slices.Sort(gs)
	return slices.Compact(gs)
}

// Outer returns texts but for each one that a later one contains, such as a
// first name inside a full name: its trigrams are the later one's too. It
// reuses the memory of texts.
func Outer(texts []string) []string {
	out := texts[:0]
	for i, s := range texts {
		if !slices.ContainsFunc(texts[i+1:], func(t string) bool { return strings.Contains(t, s) }) {
			out = append(out, s)
		}
	}
	return out
}
