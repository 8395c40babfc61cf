package breach_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userkit/users/breach"
)

// TestList generates a list of 2,000 breached passwords in every form the
// format allows, and checks each of them, and 2,000 others, against it.
func TestList(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pw := func(kind string, i int) string { return fmt.Sprintf("%s-%d-%x", kind, i, r.Uint64()) }
	var listed, other []string
	var b strings.Builder
	for i := range 2000 {
		p := pw("listed", i)
		listed = append(listed, p)
		h := sha1Hex(p)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "%s:%d\r\n", h, i+1) // the published format
		case 1:
			fmt.Fprintf(&b, "%s\n", strings.ToLower(h)) // no count, lower case
		case 2:
			fmt.Fprintf(&b, "%s:%d\n\n", h[:16], i+1) // a 16-digit prefix
		case 3:
			fmt.Fprintf(&b, "%s\n", h[:21]) // an odd-length prefix
		}
		other = append(other, pw("other", i))
	}
	fmt.Fprintf(&b, "%s:0\n", sha1Hex("zero count")) // padding: ignored
	name := filepath.Join(t.TempDir(), "hashes.txt")
	if err := os.WriteFile(name, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := breach.OpenList(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Len(), 2000; got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}
	for _, p := range listed {
		if got, err := l.Breached(t.Context(), p); !got || err != nil {
			t.Errorf("Breached(%q) = %v, %v; want true, nil", p, got, err)
		}
	}
	for _, p := range append(other, "zero count") {
		if got, err := l.Breached(t.Context(), p); got || err != nil {
			t.Errorf("Breached(%q) = %v, %v; want false, nil", p, got, err)
		}
	}

	t.Run("MinCount", func(t *testing.T) {
		l, err := breach.OpenList(name, &breach.ListOptions{MinCount: 1000})
		if err != nil {
			t.Fatal(err)
		}
		// Kept: the counted lines (i%4 is 0 or 2) with i+1 >= 1000.
		for i, p := range listed {
			want := (i%4 == 0 || i%4 == 2) && i+1 >= 1000
			if got, _ := l.Breached(t.Context(), p); got != want {
				t.Errorf("listed %d (count %d): Breached = %v, want %v", i, i+1, got, want)
			}
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		h := sha1Hex("x")
		for _, tc := range []struct{ text, line string }{
			{h + "\n" + h[:15] + "\n", "line 2"}, // too short a prefix
			{h + "0\n", "line 1"},                // too long
			{"Z" + h[1:] + "\n", "line 1"},       // not hex
			{"\n\n" + h + ":many\n", "line 3"},   // a count that is not a number
			{h + ":-1\n", "line 1"},              // a negative count
		} {
			_, err := breach.ReadList(strings.NewReader(tc.text), nil)
			if err == nil || !strings.Contains(err.Error(), tc.line) {
				t.Errorf("ReadList(%q) = %v, want an error naming %s", tc.text, err, tc.line)
			}
		}
		if _, err := breach.OpenList(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
			t.Error("OpenList of a missing file: no error")
		}
	})
}
