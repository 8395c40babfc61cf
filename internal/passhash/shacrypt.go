package passhash

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt, the $5$ (SHA-256) and $6$ (SHA-512) methods of crypt(3), written
// here from Ulrich Drepper's specification ("Unix crypt using SHA-256 and
// SHA-512", https://www.akkadia.org/drepper/SHA-crypt.txt): golang.org/x/crypto
// has no implementation, and no maintained module is among the allowed
// dependencies. The tests check it against Python's crypt module (glibc).

const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000 // the specification raises smaller values to this
	shaCryptMaxSalt       = 16   // and cuts longer salts to this
)

type shaCryptHash struct {
	id     string // "5" or "6"
	rounds int
	custom bool // "rounds=" was given (it then appears in the output)
	salt   string
	hash   string // the encoded digest, 43 or 86 characters
}

func (h *shaCryptHash) Format() string {
	if h.id == "5" {
		return "sha256-crypt"
	}
	return "sha512-crypt"
}

func (h *shaCryptHash) Verify(pw []byte) bool {
	got := shaCrypt(h.id, pw, []byte(h.salt), h.rounds)
	return equal([]byte(got), []byte(h.hash))
}

// parseSHACrypt reads $5$[rounds=N$]SALT$HASH and $6$….
func parseSHACrypt(s string, _ *Config) (Hash, error) {
	f := strings.Split(s, "$")
	h := &shaCryptHash{id: f[1], rounds: shaCryptDefaultRounds}
	f = f[2:]
	if len(f) == 3 {
		v, ok := strings.CutPrefix(f[0], "rounds=")
		if !ok {
			return nil, malformed("is not $" + h.id + "$[rounds=N$]salt$hash")
		}
		n, ok := atoi(v)
		if !ok {
			return nil, &ParamError{Param: "rounds", Reason: "is not a number"}
		}
		if n > MaxSHACryptRounds {
			return nil, outOfRange("rounds", n, shaCryptMinRounds, MaxSHACryptRounds)
		}
		h.rounds, h.custom = max(n, shaCryptMinRounds), true
		f = f[1:]
	}
	if len(f) != 2 {
		return nil, malformed("is not $" + h.id + "$[rounds=N$]salt$hash")
	}
	h.salt, h.hash = f[0], f[1]
	size := 43
	if h.id == "6" {
		size = 86
	}
	if len(h.salt) > shaCryptMaxSalt || strings.ContainsAny(h.salt, "\x00:\n") {
		return nil, &ParamError{Param: "salt", Reason: "must be at most 16 characters"}
	}
	if len(h.hash) != size || strings.Trim(h.hash, cryptAlphabet) != "" {
		return nil, malformed("hash is not " + strconv.Itoa(size) + " characters of crypt's base64")
	}
	return h, nil
}

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Byte orders of the final encoding, three bytes to four characters.
var (
	sha256Order = [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14}, {15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}}
	sha512Order = [][3]int{{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41}}
)

// shaCrypt computes the encoded digest (the part after the last "$") of
// password with salt (at most 16 bytes) and rounds, for id "5" or "6".
func shaCrypt(id string, pw, salt []byte, rounds int) string {
	newHash := sha512.New
	if id == "5" {
		newHash = sha256.New
	}
	sum := func(h hash.Hash) []byte { return h.Sum(nil) }

	// Digest B: password, salt, password.
	hb := newHash()
	hb.Write(pw)
	hb.Write(salt)
	hb.Write(pw)
	b := sum(hb)
	n := len(b)

	// Digest A: password, salt, B repeated over the password's length, then
	// for each bit of that length from the lowest, B for a one, the password
	// for a zero.
	ha := newHash()
	ha.Write(pw)
	ha.Write(salt)
	for l := len(pw); l > 0; l -= n {
		ha.Write(b[:min(l, n)])
	}
	for l := len(pw); l > 0; l >>= 1 {
		if l&1 != 0 {
			ha.Write(b)
		} else {
			ha.Write(pw)
		}
	}
	a := sum(ha)

	// P: the digest of the password repeated once per byte of it, stretched
	// to the password's length. S: the digest of the salt repeated 16 + A[0]
	// times, stretched to the salt's length.
	hp := newHash()
	for range len(pw) {
		hp.Write(pw)
	}
	p := stretch(sum(hp), len(pw))
	hs := newHash()
	for range 16 + int(a[0]) {
		hs.Write(salt)
	}
	s := stretch(sum(hs), len(salt))

	// The rounds.
	c := a
	h := newHash()
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}

	// Encoding: groups of three bytes in the order of the table, low six
	// bits first; the last group is short.
	var out strings.Builder
	enc := func(b2, b1, b0 byte, chars int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range chars {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	if id == "5" {
		for _, g := range sha256Order {
			enc(c[g[0]], c[g[1]], c[g[2]], 4)
		}
		enc(0, c[31], c[30], 3)
	} else {
		for _, g := range sha512Order {
			enc(c[g[0]], c[g[1]], c[g[2]], 4)
		}
		enc(0, 0, c[63], 2)
	}
	return out.String()
}

// stretch repeats d to length l.
func stretch(d []byte, l int) []byte {
	out := make([]byte, 0, l)
	for len(out) < l {
		out = append(out, d[:min(len(d), l-len(out))]...)
	}
	return out
}
