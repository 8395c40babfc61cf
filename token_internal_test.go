package users

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestWellFormedToken checks the hand-written token check against the decoder
// it stands for: a token is well formed exactly when base64url's strict
// decoding gives tokenBytes bytes.
func TestWellFormedToken(t *testing.T) {
	decodes := func(s string) bool {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		return err == nil && len(b) == tokenBytes
	}
	good := base64.RawURLEncoding.EncodeToString(make([]byte, tokenBytes))
	cases := []string{"", good, good[:42], good + "A", strings.Repeat("_", 43), strings.Repeat("-", 42) + "w",
		strings.Repeat("A", 42) + "B", strings.Repeat("A", 42) + "E", strings.Repeat("A", 41) + "=A",
		strings.Repeat("A", 21) + "\n" + strings.Repeat("A", 21), strings.Repeat("A", 42) + "\xff", strings.Repeat("+", 43)}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, tokenBytes)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		s := []byte(base64.RawURLEncoding.EncodeToString(b))
		// Change one character to any byte, now and then.
		if rnd.IntN(2) == 0 {
			s[rnd.IntN(len(s))] = byte(rnd.Uint32())
		}
		cases = append(cases, string(s))
	}
	for _, s := range cases {
		if got, want := wellFormedToken(s), decodes(s); got != want {
			t.Errorf("wellFormedToken(%q) = %v, but strict base64url decoding says %v", s, got, want)
		}
	}
}
