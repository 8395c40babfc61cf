package users

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on user fields. They are generous for real data and small enough that a
// hostile caller cannot make one record huge.
const (
	maxEmailBytes      = 254 // RFC 5321 path limit
	maxLocalPartBytes  = 64
	minUsernameLen     = 3
	maxUsernameLen     = 32
	maxNameChars       = 100
	maxAvatarURLBytes  = 2048
	maxAccountIDBytes  = 128
	maxPreferences     = 64
	maxPrefKeyBytes    = 64
	maxPrefValueBytes  = 1024
	defaultPageLimit   = 20
	maxPageLimit       = 100
	maxSearchChars     = 100
	maxIdentifierBytes = maxEmailBytes
)

// NormalizeEmail refuses any non-ASCII input, then trims and lower-cases an
// email address and validates it: one address, no display name or angle brackets, printable ASCII only, exactly one
// "@", a local part of at most 64 bytes made of RFC 5322 atom characters and dots,
// a domain of letters, digits and hyphens in dot-separated labels, and at most 254
// bytes in all. It returns the normal form, or a *ValidationError on "email".
// Internationalised (non-ASCII) addresses are refused.
func NormalizeEmail(s string) (string, error) {
	if !isASCII(s) {
		// Refused before any folding: Unicode lower-casing turns U+0130 and the
		// Kelvin sign U+212A into ASCII letters, and trimming removes Unicode
		// spaces, so a folded non-ASCII address could become someone else's.
		return "", invalid("email", ValidationNotASCII, "must be ASCII; internationalised addresses are not supported")
	}
	e := strings.ToLower(strings.TrimSpace(s))
	switch {
	case e == "":
		return "", invalid("email", ValidationRequired, "is required")
	case len(e) > maxEmailBytes:
		return "", invalid("email", ValidationTooLong, "must be at most 254 bytes")
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || strings.Contains(domain, "@") {
		return "", invalid("email", ValidationMalformed, "must contain exactly one @")
	}
	if local == "" {
		return "", invalid("email", ValidationMalformed, "must have a local part of 1 to 64 bytes before the @")
	}
	if len(local) > maxLocalPartBytes {
		return "", invalid("email", ValidationTooLong, "must have a local part of 1 to 64 bytes before the @")
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return "", invalid("email", ValidationMalformed, "must not have a leading, trailing or double dot")
	}
	for i := 0; i < len(local); i++ {
		if !isAtext(local[i]) && local[i] != '.' {
			return "", invalid("email", ValidationMalformed, "has a character not allowed in an address: "+strconv.QuoteRune(rune(local[i])))
		}
	}
	if domain == "" {
		return "", invalid("email", ValidationMalformed, "must have a domain after the @")
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", invalid("email", ValidationMalformed, "has an invalid domain")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", invalid("email", ValidationMalformed, "has an invalid domain")
			}
		}
	}
	return e, nil
}

// isASCII reports whether s is all ASCII. NormalizeEmail, NormalizeUsername and
// Login's identifier lookup refuse anything else before they fold case or trim.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isAtext reports whether c is an RFC 5322 atext character (after lower-casing).
func isAtext(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+/=?^_`{|}~-", c) >= 0
}

// NormalizeUsername refuses any non-ASCII input, then trims and lower-cases a
// username and validates it: 3 to 32 characters of a-z, 0-9, "_", "." and "-". It returns the normal form or a
// *ValidationError on "username". The empty string is returned as is: a username
// is optional.
func NormalizeUsername(s string) (string, error) {
	if !isASCII(s) {
		return "", invalid("username", ValidationNotASCII, "may contain only a-z, 0-9, _, . and -")
	}
	u := strings.ToLower(strings.TrimSpace(s))
	if u == "" {
		return "", nil
	}
	if len(u) < minUsernameLen {
		return "", invalid("username", ValidationTooShort, "must be 3 to 32 characters")
	}
	if len(u) > maxUsernameLen {
		return "", invalid("username", ValidationTooLong, "must be 3 to 32 characters")
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return "", invalid("username", ValidationMalformed, "may contain only a-z, 0-9, _, . and -")
		}
	}
	return u, nil
}

// checkText validates a free-text field: valid UTF-8, no control characters, at
// most max characters. Surrounding space is trimmed.
func checkText(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", invalid(field, ValidationInvalidUTF8, "must be valid UTF-8")
	}
	if utf8.RuneCountInString(s) > max {
		return "", invalid(field, ValidationTooLong, "must be at most "+strconv.Itoa(max)+" characters")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", invalid(field, ValidationControlCharacter, "must not contain control characters")
		}
	}
	return s, nil
}

func checkAvatarURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > maxAvatarURLBytes {
		return "", invalid("avatar_url", ValidationTooLong, "must be at most 2048 bytes")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", invalid("avatar_url", ValidationMalformed, "must be an absolute http or https URL")
	}
	return s, nil
}

func checkAccountID(s string) (string, error) {
	s, err := checkText("account_id", s, maxAccountIDBytes)
	if err == nil && len(s) > maxAccountIDBytes {
		err = invalid("account_id", ValidationTooLong, "must be at most 128 bytes")
	}
	return s, err
}

func checkPreferences(p map[string]string) (map[string]string, error) {
	if len(p) > maxPreferences {
		return nil, invalid("preferences", ValidationTooMany, "must have at most "+strconv.Itoa(maxPreferences)+" entries")
	}
	out := make(map[string]string, len(p))
	for k, v := range p {
		if k == "" || len(k) > maxPrefKeyBytes || !utf8.ValidString(k) || strings.IndexFunc(k, unicode.IsControl) >= 0 {
			return nil, invalid("preferences", ValidationMalformed, "keys must be 1 to 64 bytes of printable UTF-8")
		}
		if len(v) > maxPrefValueBytes || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return nil, invalid("preferences", ValidationMalformed, "values must be at most 1024 bytes of UTF-8 without NUL")
		}
		out[k] = v
	}
	return out, nil
}

func (m *Manager) checkRole(r Role) error {
	for _, ok := range m.roles {
		if r == ok {
			return nil
		}
	}
	return invalid("role", ValidationNotOneOf, "must be one of "+m.roleList())
}

func (m *Manager) roleList() string {
	s := make([]string, len(m.roles))
	for i, r := range m.roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}
