package trigram

import (
	"slices"
	"testing"
)

func TestAppend(t *testing.T) {
	got := Append(nil, "abcab")
	want := []T{FromKey([]byte("abc")), FromKey([]byte("bca")), FromKey([]byte("cab"))}
	if !slices.Equal(got, want) {
		t.Errorf("Append(nil, %q) = %v, want %v", "abcab", got, want)
	}
	if got := Append(nil, "ab"); len(got) != 0 {
		t.Errorf("Append(nil, %q) = %v, want none", "ab", got)
	}
}

func TestKeyRoundTrip(t *testing.T) {
	g := At("xa\xffz", 1)
	if got, want := string(g.Key()), "a\xffz"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	if FromKey(g.Key()) != g {
		t.Errorf("FromKey(Key()) = %v, want %v", FromKey(g.Key()), g)
	}
	if a, b := FromKey([]byte("abd")), FromKey([]byte("abe")); a >= b {
		t.Errorf("trigrams must order as their bytes: %v >= %v", a, b)
	}
}

func TestDistinct(t *testing.T) {
	// "ada" and "lovelace" are inside "ada lovelace": they add no trigram of
	// their own, and a trigram in two texts counts once.
	texts := []string{"ada@example.com", "ada", "lovelace", "ada lovelace"}
	got := Distinct(slices.Clone(texts))
	var want []T
	for _, s := range texts {
		want = Append(want, s)
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(got, want) {
		t.Errorf("Distinct(%q) = %v, want %v", texts, got, want)
	}
	if got := Outer(slices.Clone(texts)); !slices.Equal(got, []string{"ada@example.com", "ada lovelace"}) {
		t.Errorf("Outer(%q) = %q", texts, got)
	}
}
