package passhash

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/scrypt"
)

// argon2Hash is an Argon2i or Argon2id hash (version 1.3, the only one
// golang.org/x/crypto/argon2 computes).
type argon2Hash struct {
	format             string
	id                 bool
	memory, iterations uint32
	parallelism        uint8
	salt, key          []byte
}

func (h *argon2Hash) Format() string { return h.format }

func (h *argon2Hash) Verify(pw []byte) bool {
	f := argon2.Key
	if h.id {
		f = argon2.IDKey
	}
	return equal(f(pw, h.salt, h.iterations, h.memory, h.parallelism, uint32(len(h.key))), h.key)
}

// newArgon2 checks Argon2 parameters against the bounds.
func newArgon2(format string, id bool, m, t, p int, salt, key []byte) (Hash, error) {
	switch {
	case t < 1 || t > MaxArgon2Iterations:
		return nil, outOfRange("iterations", t, 1, MaxArgon2Iterations)
	case p < 1 || p > MaxArgon2Parallelism:
		return nil, outOfRange("parallelism", p, 1, MaxArgon2Parallelism)
	case m < 8*p || m > MaxArgon2Memory:
		return nil, outOfRange("memory", m, 8*p, MaxArgon2Memory)
	case m*t > MaxArgon2Work:
		return nil, &ParamError{Param: "iterations", Reason: "times memory is " + strconv.Itoa(m*t) + " KiB, must be at most " + strconv.Itoa(MaxArgon2Work)}
	}
	if err := checkSalt(salt, 8); err != nil {
		return nil, err
	}
	if err := checkKey(key, 4, 128); err != nil {
		return nil, err
	}
	return &argon2Hash{format: format, id: id, memory: uint32(m), iterations: uint32(t), parallelism: uint8(p), salt: salt, key: key}, nil
}

// parseArgon2PHC reads $argon2id$v=19$m=…,t=…,p=…$salt$hash (or $argon2i$).
func parseArgon2PHC(s string, _ *Config) (Hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return nil, malformed("is not $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if f[2] != "v=19" {
		return nil, &ParamError{Param: "version", Reason: "must be v=19 (Argon2 1.3)"}
	}
	ps, err := params(f[3], "m", "t", "p")
	if err != nil {
		return nil, err
	}
	salt, err := decodeB64(f[4])
	if err != nil {
		return nil, &ParamError{Param: "salt", Reason: "is not base64"}
	}
	key, err := decodeB64(f[5])
	if err != nil {
		return nil, malformed("hash is not base64")
	}
	return newArgon2(f[1], f[1] == "argon2id", ps["m"], ps["t"], ps["p"], salt, key)
}

// scryptHash is a scrypt hash; prefix and suffix wrap it for Firebase.
type scryptHash struct {
	n, r, p   int
	salt, key []byte
}

func (h *scryptHash) Format() string { return "scrypt" }

func (h *scryptHash) Verify(pw []byte) bool {
	k, err := scrypt.Key(pw, h.salt, h.n, h.r, h.p, len(h.key))
	return err == nil && equal(k, h.key)
}

// checkScrypt checks scrypt parameters against the bounds.
func checkScrypt(n, r, p int) error {
	switch {
	case n < 2 || n > MaxScryptN || n&(n-1) != 0:
		return &ParamError{Param: "n", Reason: "is " + strconv.Itoa(n) + ", must be a power of two from 2 to " + strconv.Itoa(MaxScryptN)}
	case r < 1 || r > MaxScryptR:
		return outOfRange("r", r, 1, MaxScryptR)
	case p < 1 || p > MaxScryptP:
		return outOfRange("p", p, 1, MaxScryptP)
	case 128*n*r > MaxScryptMemory:
		return &ParamError{Param: "n", Reason: "and r need " + strconv.Itoa(128*n*r>>20) + " MiB, must be at most " + strconv.Itoa(MaxScryptMemory>>20)}
	case 128*n*r*p > MaxScryptWork:
		return &ParamError{Param: "p", Reason: "times N and r is too much work (" + strconv.Itoa(128*n*r*p>>20) + " MiB of mixing, at most " + strconv.Itoa(MaxScryptWork>>20) + ")"}
	}
	return nil
}

// parseScryptPHC reads $scrypt$ln=…,r=…,p=…$salt$hash.
func parseScryptPHC(s string, _ *Config) (Hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 5 || f[0] != "" {
		return nil, malformed("is not $scrypt$ln=…,r=…,p=…$salt$hash")
	}
	ps, err := params(f[2], "ln", "r", "p")
	if err != nil {
		return nil, err
	}
	if ps["ln"] < 1 || ps["ln"] > 20 {
		return nil, outOfRange("n", ps["ln"], 1, 20)
	}
	h := &scryptHash{n: 1 << ps["ln"], r: ps["r"], p: ps["p"]}
	if err := checkScrypt(h.n, h.r, h.p); err != nil {
		return nil, err
	}
	if h.salt, err = decodeB64(f[3]); err != nil {
		return nil, &ParamError{Param: "salt", Reason: "is not base64"}
	}
	if h.key, err = decodeB64(f[4]); err != nil {
		return nil, malformed("hash is not base64")
	}
	if err := checkSalt(h.salt, 0); err != nil {
		return nil, err
	}
	if err := checkKey(h.key, 16, 128); err != nil {
		return nil, err
	}
	return h, nil
}

// pbkdf2Hash is a PBKDF2-HMAC hash.
type pbkdf2Hash struct {
	format     string
	h          func() hash.Hash
	iterations int
	salt, key  []byte
}

func (h *pbkdf2Hash) Format() string { return h.format }

func (h *pbkdf2Hash) Verify(pw []byte) bool {
	k, err := pbkdf2.Key(h.h, string(pw), h.salt, h.iterations, len(h.key))
	return err == nil && equal(k, h.key)
}

// digests maps a digest name to its function, its size and its work bound.
var digests = map[string]struct {
	h       func() hash.Hash
	size    int
	maxWork int
}{
	"sha1":   {sha1.New, sha1.Size, MaxPBKDF2SHA1Work},
	"sha256": {sha256.New, sha256.Size, MaxPBKDF2SHA256Work},
	"sha512": {sha512.New, sha512.Size, MaxPBKDF2SHA512Work},
}

// newPBKDF2 checks PBKDF2 parameters against the bounds. The work is the
// iterations times the blocks of output.
func newPBKDF2(format, digest string, iterations int, salt, key []byte, minKey int) (Hash, error) {
	d := digests[digest]
	if err := checkKey(key, minKey, 128); err != nil {
		return nil, err
	}
	blocks := (len(key) + d.size - 1) / d.size
	if iterations < 1 || iterations*blocks > d.maxWork {
		return nil, &ParamError{Param: "iterations", Reason: "is " + strconv.Itoa(iterations) + " for " + strconv.Itoa(blocks) + " block(s) of " + digest + ", must be between 1 and " + strconv.Itoa(d.maxWork/blocks)}
	}
	if err := checkSalt(salt, 0); err != nil {
		return nil, err
	}
	return &pbkdf2Hash{format: format, h: d.h, iterations: iterations, salt: salt, key: key}, nil
}

// parsePBKDF2PHC reads $pbkdf2-sha256$i=…[,l=…]$salt$hash and passlib's
// $pbkdf2-sha256$ROUNDS$salt$hash (also -sha512, and $pbkdf2$ for SHA-1).
func parsePBKDF2PHC(s string, _ *Config) (Hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 5 || f[0] != "" {
		return nil, malformed("is not $pbkdf2-sha256$i=…$salt$hash")
	}
	digest := strings.TrimPrefix(f[1], "pbkdf2-")
	if f[1] == "pbkdf2" {
		digest = "sha1"
	}
	var iterations, length int
	if n, ok := atoi(f[2]); ok {
		iterations = n
	} else {
		ps, err := params(f[2], "i", "l?")
		if err != nil {
			return nil, err
		}
		iterations, length = ps["i"], ps["l"]
	}
	salt, err := decodeB64(f[3])
	if err != nil {
		return nil, &ParamError{Param: "salt", Reason: "is not base64"}
	}
	key, err := decodeB64(f[4])
	if err != nil {
		return nil, malformed("hash is not base64")
	}
	if length != 0 && length != len(key) {
		return nil, &ParamError{Param: "key_length", Reason: "l=" + strconv.Itoa(length) + " but the hash has " + strconv.Itoa(len(key)) + " bytes"}
	}
	return newPBKDF2("pbkdf2-"+digest, digest, iterations, salt, key, 16)
}
