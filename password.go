package users

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"
)

// Password limits, in Unicode characters after NFKC normalisation.
const (
	// MinPasswordLength is the smallest minimum length Options.MinPasswordLength
	// accepts, and its default (NIST SP 800-63B).
	MinPasswordLength = 8
	// MaxPasswordLength is the longest password accepted (OWASP ASVS 4, 2.1.2).
	MaxPasswordLength = 128

	// maxPasswordBytes bounds the raw input before normalisation, so that a huge
	// string costs nothing to refuse. It must admit every spelling of a password
	// of MaxPasswordLength characters, not just the composed one: a Hangul
	// syllable typed as its three jamo (NFD, as macOS input gives it) is 9 bytes
	// that NFKC makes one character, so 128 of them are 1,152 bytes.
	maxPasswordBytes = 16 * MaxPasswordLength
)

// Our hash format: hashPrefix followed by a bcrypt hash of the base64 of
// HMAC-SHA-256(prehashKey, NFKC(password)). The pre-hash lets passwords of any
// length up to MaxPasswordLength characters reach bcrypt whole: bcrypt reads only
// 72 bytes, and 64 CJK characters are already 192. The keyed HMAC (not a bare
// SHA-256) keeps hashes leaked from other systems from being tried against ours.
const hashPrefix = "$bcrypt-sha256$v=1$"

var prehashKey = []byte("github.com/userkit/users password pre-hash v1")

// normalizePassword applies NFKC and checks the password's form: valid UTF-8, no
// control characters (NUL included), between min and MaxPasswordLength characters.
// It returns a *ValidationError on field.
func normalizePassword(field, pw string, min int) (string, error) {
	if pw == "" {
		return "", invalid(field, ValidationRequired, "is required")
	}
	if len(pw) > maxPasswordBytes {
		return "", invalid(field, ValidationTooLong, "must be at most "+strconv.Itoa(MaxPasswordLength)+" characters")
	}
	if !utf8.ValidString(pw) {
		return "", invalid(field, ValidationInvalidUTF8, "must be valid UTF-8")
	}
	n := norm.NFKC.String(pw)
	if strings.IndexFunc(n, unicode.IsControl) >= 0 {
		return "", invalid(field, ValidationControlCharacter, "must not contain control characters")
	}
	switch c := utf8.RuneCountInString(n); {
	case c < min:
		return "", invalid(field, ValidationTooShort, "must be at least "+strconv.Itoa(min)+" characters")
	case c > MaxPasswordLength:
		return "", invalid(field, ValidationTooLong, "must be at most "+strconv.Itoa(MaxPasswordLength)+" characters")
	}
	return n, nil
}

func prehash(normalized string) []byte {
	mac := hmac.New(sha256.New, prehashKey)
	mac.Write([]byte(normalized))
	sum := mac.Sum(nil)
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum)
	return out // 44 bytes: well under bcrypt's 72
}

// hashPassword hashes an already-normalised password at the Manager's cost. It
// waits for a hashing slot; it must never be called with a store lock held.
func (m *Manager) hashPassword(ctx context.Context, normalized string) (string, error) {
	if err := m.acquireHash(ctx); err != nil {
		return "", err
	}
	defer m.releaseHash()
	h, err := bcrypt.GenerateFromPassword(prehash(normalized), m.cost)
	if err != nil {
		return "", err
	}
	return hashPrefix + string(h), nil
}

// decoys holds the decoy hash of each bcrypt cost, made by the first New at
// that cost and shared by every Manager of the process that uses the cost. A
// decoy is a hash of random input that is only ever compared to fail (see
// passwordCheck): what it must be is a hash of our format at the Manager's
// cost, so that comparing against it costs what a real check costs. One per
// cost keeps that, and spares every further New the hash: a program or a test
// binary that makes many Managers pays for one decoy per cost, not one each.
var decoys [bcrypt.MaxCost + 1]struct {
	mu   sync.Mutex
	hash string // "" until made
}

// decoyHash returns the decoy hash at cost, hashing seed (random bytes of the
// caller's) if this is the first call at that cost. A failed hash is not
// kept, so the next call tries again. It is safe for concurrent use: calls at
// one cost wait for the first.
func decoyHash(cost int, seed []byte) (string, error) {
	d := &decoys[cost]
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hash == "" {
		h, err := bcrypt.GenerateFromPassword(prehash(base64.RawURLEncoding.EncodeToString(seed)), cost)
		if err != nil {
			return "", err
		}
		d.hash = hashPrefix + string(h)
	}
	return d.hash, nil
}

// errHashMismatch is what comparePassword returns for a wrong password.
var errHashMismatch = errors.New("password mismatch")

// comparePassword runs exactly one hash check of password (raw, as the caller
// gave it) against encoded: a bcrypt comparison for our format and imported
// bcrypt, the format's own check for another imported format (see
// password_import.go). An empty, malformed or over-bound hash compares against
// the dummy hash, so the time taken never tells whether a user exists. It
// returns nil on a match.
//
// reserve runs once a hashing slot is held, just before the check; if it
// fails, nothing is compared and its error is returned. Reserving only then
// means a caller that gives up while waiting for a slot has reserved nothing.
func (m *Manager) comparePassword(ctx context.Context, encoded, password string, reserve func() error) error {
	check := m.passwordCheck(encoded, password)
	if err := m.acquireHash(ctx); err != nil {
		return err
	}
	defer m.releaseHash()
	if err := reserve(); err != nil {
		return err
	}
	if m.onCompare != nil {
		m.onCompare()
	}
	if !check() {
		return errHashMismatch
	}
	return nil
}

// passwordCheck returns the one costly check comparePassword runs. When the
// check can only be a decoy (unknown hash format, a password that cannot be
// valid, a hash over its bounds) it is a bcrypt comparison against the dummy
// hash that always fails, so that every such failure costs one bcrypt at the
// configured cost.
func (m *Manager) passwordCheck(encoded, password string) func() bool {
	decoy := func() func() bool {
		if len(password) > maxPasswordBytes {
			password = "" // a decoy need not read a huge input
		}
		hash := []byte(strings.TrimPrefix(m.dummyHash, hashPrefix))
		input := prehash(password)
		return func() bool {
			_ = bcrypt.CompareHashAndPassword(hash, input)
			return false
		}
	}
	bcryptCheck := func(hash, input []byte) func() bool {
		return func() bool { return bcrypt.CompareHashAndPassword(hash, input) == nil }
	}
	if !m.bcryptCostOK(bcryptCost(encoded)) {
		// Stored before Options.MaxBcryptCost bounded it: never computed.
		return decoy()
	}
	if b, found := strings.CutPrefix(encoded, hashPrefix); found {
		n, err := normalizePassword("password", password, 1)
		if err != nil {
			return decoy()
		}
		return bcryptCheck([]byte(b), prehash(n))
	}
	if isImportedBcrypt(encoded) {
		// Imported hashes were made from the raw bytes the old system was given.
		// bcrypt reads only 72 of them; refuse longer input rather than let a
		// prefix match.
		if password == "" || len(password) > 72 || strings.IndexByte(password, 0) >= 0 {
			return decoy()
		}
		return bcryptCheck([]byte(encoded), []byte(password))
	}
	if h := m.parseOtherHash(encoded); h != nil && password != "" && len(password) <= maxPasswordBytes {
		return func() bool { return h.Verify([]byte(password)) }
	}
	return decoy()
}

// isOwnHash reports whether h is a hash in this package's format, as another
// store of this package (an export with -with-hashes, say) gives it: the marker
// followed by a well-formed bcrypt hash.
func isOwnHash(h string) bool {
	b, ok := strings.CutPrefix(h, hashPrefix)
	return ok && strings.HasPrefix(b, "$2a$") && isImportedBcrypt(b)
}

// isImportedBcrypt reports whether h looks like a bcrypt hash from another system.
func isImportedBcrypt(h string) bool {
	if len(h) != 60 {
		return false
	}
	switch h[:4] {
	case "$2a$", "$2b$", "$2y$":
		_, err := bcrypt.Cost([]byte(h))
		return err == nil
	}
	return false
}

// rehashable reports whether a password that verified against an imported hash
// can be hashed in this package's format: one with control characters or bytes
// that are not UTF-8 cannot, and is never cut or changed to make it fit.
func rehashable(password string) bool {
	_, err := normalizePassword("password", password, 1)
	return err == nil
}

// needsRehash reports whether a hash that just verified should be replaced: an
// imported hash, or one of ours at another cost.
func (m *Manager) needsRehash(encoded string) bool {
	b, ours := strings.CutPrefix(encoded, hashPrefix)
	if !ours {
		return true
	}
	cost, err := bcrypt.Cost([]byte(b))
	return err != nil || cost != m.cost
}

func (m *Manager) acquireHash(ctx context.Context) error {
	select {
	case m.hashSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) releaseHash() { <-m.hashSlots }

// checkNewPassword normalises a password being set for u and runs the password
// checker and the breach checker on it. It returns the normalised form, a
// *ValidationError on field, or the breach checker's error.
func (m *Manager) checkNewPassword(ctx context.Context, field, pw string, u *User) (string, error) {
	n, err := normalizePassword(field, pw, m.minPassword)
	if err != nil {
		return "", err
	}
	if err := m.checkPolicy(ctx, field, n, u); err != nil {
		return "", err
	}
	if err := m.checkBreached(ctx, field, n); err != nil {
		return "", err
	}
	return n, nil
}

// checkPolicy runs the password checker on the normalised password n being
// set for u. It returns nil, the checker's error as it is when it is (or
// wraps) a *ValidationError with a Code, or else a *ValidationError with
// ValidationPasswordRejected.
func (m *Manager) checkPolicy(ctx context.Context, field, n string, u *User) error {
	err := m.checker(ctx, n, u)
	if err == nil {
		return nil
	}
	var ve *ValidationError
	switch {
	case errors.As(err, &ve) && ve.Code != "":
		return err
	case ve != nil: // the checker's own, without a code: keep its words
		return &ValidationError{Field: ve.Field, Code: ValidationPasswordRejected, Reason: ve.Reason}
	}
	return &ValidationError{Field: field, Code: ValidationPasswordRejected, Reason: err.Error()}
}

// checkBreached asks the breach checker, if any, about the normalised
// password n. It returns a *ValidationError on field for a breached one, or
// the checker's error wrapped.
func (m *Manager) checkBreached(ctx context.Context, field, n string) error {
	if m.breach == nil {
		return nil
	}
	breached, err := m.breach.Breached(ctx, n)
	if err != nil {
		return fmt.Errorf("users: breached-password check: %w", err)
	}
	if breached {
		return invalid(field, ValidationBreachedPassword, "has appeared in a data breach; choose another")
	}
	return nil
}

// BreachChecker tells whether a password is known from a data breach (NIST SP
// 800-63B 5.1.1.2). Options.BreachChecker names one; package
// github.com/userkit/users/breach has a client of the k-anonymity range API
// and an offline list.
//
// Breached is given the NFKC-normalised password, never a hash of it. It
// reports true for a breached password. An error means the checker could not
// tell: the Manager then refuses the password and returns the error wrapped
// (not as a *ValidationError), so a checker that prefers to let passwords
// through while its source is unreachable (fail-open) returns false and a nil
// error instead. Implementations must be safe for concurrent use and must
// honour ctx.
type BreachChecker interface {
	Breached(ctx context.Context, password string) (bool, error)
}

//go:embed common_passwords.txt
var commonPasswordsText string

// commonPasswords returns the lowercased list and where each of its words is
// in it, ordered by the word, for a binary search. Neither holds a pointer, so
// the collector never scans them: a set of the words as strings would be 60
// KB that every cycle of every program using the default checker scans.
var commonPasswords = sync.OnceValues(func() (string, []span) {
	text := strings.ToLower(commonPasswordsText)
	var words []span
	for rest, at := text, 0; rest != ""; {
		line, next, _ := strings.Cut(rest, "\n")
		if w := strings.TrimSpace(line); w != "" {
			words = append(words, span{uint32(at + strings.Index(line, w)), uint32(len(w))})
		}
		at += len(rest) - len(next)
		rest = next
	}
	slices.SortFunc(words, func(a, b span) int { return strings.Compare(a.in(text), b.in(text)) })
	return text, words
})

// span is where a word is in a text.
type span struct{ at, n uint32 }

func (s span) in(text string) string { return text[s.at : s.at+s.n] }

// isCommonPassword reports whether p, lowercased, is one of the list's words.
func isCommonPassword(p string) bool {
	text, words := commonPasswords()
	_, found := slices.BinarySearchFunc(words, p, func(w span, p string) int { return strings.Compare(w.in(text), p) })
	return found
}

// DefaultPasswordChecker is the password checker used when Options.PasswordChecker
// is nil. It refuses, with a *ValidationError on "password", a password that is
// (ignoring case) one of the about 1,000 most common passwords of at least 8
// characters (a list embedded in the package), or the user's email, the local part
// of it, or the username. It imposes no composition rules (NIST SP 800-63B 3.1.1.2).
// u may be nil. It is safe for concurrent use.
func DefaultPasswordChecker(_ context.Context, password string, u *User) error {
	p := strings.ToLower(password)
	if isCommonPassword(p) {
		return invalid("password", ValidationCommonPassword, "is one of the most commonly used passwords")
	}
	if u != nil {
		local, _, _ := strings.Cut(u.Email, "@")
		switch {
		case u.Email != "" && p == strings.ToLower(u.Email),
			local != "" && p == strings.ToLower(local),
			u.Username != "" && p == strings.ToLower(u.Username):
			return invalid("password", ValidationPersonalPassword, "must not be your email or username")
		}
	}
	return nil
}
