package breach

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// List is a users.BreachChecker over a local list of SHA-1 hashes, for
// deployments that cannot reach a range service. It keeps the first 8 bytes
// of each hash. It is safe for concurrent use.
type List struct {
	prefixes []uint64 // sorted, without duplicates
}

// ListOptions are the options of ReadList and OpenList. A nil *ListOptions
// means the zero value.
type ListOptions struct {
	// MinCount skips the lines whose count is below it, to keep only the
	// passwords seen often (a line without a count counts as 1). Zero, the
	// default, keeps every line.
	MinCount int64
}

// ReadList reads a list of SHA-1 hashes, one a line: HASH or HASH:COUNT, in
// either case, with blank lines ignored. HASH is the whole 40-digit hash, or a
// prefix of it of at least 16 hex digits (a list cut down to save space).
//
// The List keeps the first 8 bytes (16 hex digits) of each hash, sorted, and
// looks a password up by bisection: 8 bytes a hash, no tuning, the same answer
// on every machine, and a list that can be cut to prefixes without changing
// what it finds. A Bloom filter would take about 1.2 bytes a hash for a 1%
// false-positive rate, but refuses one good password in a hundred; the sorted
// prefixes refuse a good password only when its SHA-1 shares its first 64
// bits with a listed one, a probability of n/2^64 for n hashes (about 5e-11
// for the billion hashes of the whole published corpus). The whole corpus
// takes about 8 GB this way; MinCount keeps the list to the passwords seen
// often.
//
// A line that is not in this format is an error naming its number, and
// nothing is returned.
func ReadList(r io.Reader, opts *ListOptions) (*List, error) {
	var o ListOptions
	if opts != nil {
		o = *opts
	}
	var out []uint64
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		h, count, hasCount := strings.Cut(line, ":")
		c := int64(1)
		if hasCount {
			var err error
			if c, err = strconv.ParseInt(count, 10, 64); err != nil || c < 0 {
				return nil, fmt.Errorf("breach: line %d: malformed count", n)
			}
		}
		p, ok := hashPrefix(h)
		if !ok {
			return nil, fmt.Errorf("breach: line %d: want 16 to 40 hex digits of a SHA-1", n)
		}
		if c > 0 && c >= o.MinCount {
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("breach: reading the list: %w", err)
	}
	slices.Sort(out)
	return &List{prefixes: slices.Compact(out)}, nil
}

// OpenList reads the list in the file name (see ReadList).
func OpenList(name string, opts *ListOptions) (*List, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("breach: %w", err)
	}
	defer f.Close()
	return ReadList(bufio.NewReaderSize(f, 1<<16), opts)
}

// hashPrefix decodes the first 8 bytes of a hex SHA-1 or of a prefix of one.
func hashPrefix(h string) (uint64, bool) {
	if len(h) < 16 || len(h) > 40 {
		return 0, false
	}
	var b [20]byte
	if len(h)%2 == 1 {
		h += "0" // a whole number of bytes; only the first 8 are kept
	}
	if _, err := hex.Decode(b[:], []byte(h)); err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[:8]), true
}

// Len returns the number of distinct 8-byte prefixes in the list.
func (l *List) Len() int { return len(l.prefixes) }

// Breached reports whether the first 8 bytes of password's SHA-1 are in the
// list. Its error is always nil.
func (l *List) Breached(_ context.Context, password string) (bool, error) {
	sum := sha1.Sum([]byte(password))
	_, found := slices.BinarySearch(l.prefixes, binary.BigEndian.Uint64(sum[:8]))
	return found, nil
}
