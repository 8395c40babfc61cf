package users

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// Record encodings (schema version 2). Users, sessions and one-time tokens are
// kept in a compact binary form; login-throttle entries stay JSON, so that fields
// added to LoginAttempts flow through without a new format.
//
// Every binary record starts with its format byte, recordFormat, so that a later
// format can be told apart (version 1 files held JSON, which starts with '{').
// After it come the fields in a fixed order:
//
//	string  uvarint length, then the bytes
//	int     varint (zig-zag)
//	time    uvarint 0 for the zero time, else uvarint nanoseconds+1 and then
//	        varint Unix seconds; times come back in UTC
//
//	user     flags (bit 0 EmailVerified, bit 1 Preferences is not nil), Email,
//	         Username, FirstName, LastName, Role, Status, AvatarURL, AccountID,
//	         PasswordHash (strings), Generation (int), EmailVerifiedAt, CreatedAt,
//	         UpdatedAt, LastLoginAt (times), then if bit 1 is set the number of
//	         preferences (uvarint) and each key and value (strings, by key)
//	session  ID, UserID (strings), UserGeneration (int), CreatedAt, ExpiresAt,
//	         LastSeenAt (times)
//	token    UserID, Purpose, Email (strings), CreatedAt, ExpiresAt (times)
//
// A record's own key is not repeated in it: the user ID, the session's token hash
// and the token's hash come from the key the record is stored under.
const recordFormat = 1

const (
	userEmailVerified = 1 << iota
	userHasPreferences
)

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(t.Nanosecond())+1)
	return binary.AppendVarint(b, t.Unix())
}

// encodeUser returns r in the binary user format, without its ID.
func encodeUser(r *UserRecord) []byte {
	n := 32 + len(r.Email) + len(r.Username) + len(r.FirstName) + len(r.LastName) + len(r.Role) +
		len(r.Status) + len(r.AvatarURL) + len(r.AccountID) + len(r.PasswordHash) + 4*14
	for k, v := range r.Preferences {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	var flags byte
	if r.EmailVerified {
		flags |= userEmailVerified
	}
	if r.Preferences != nil {
		flags |= userHasPreferences
	}
	b = append(b, recordFormat, flags)
	for _, s := range []string{r.Email, r.Username, r.FirstName, r.LastName, string(r.Role),
		string(r.Status), r.AvatarURL, r.AccountID, r.PasswordHash} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, r.Generation)
	for _, t := range []time.Time{r.EmailVerifiedAt, r.CreatedAt, r.UpdatedAt, r.LastLoginAt} {
		b = appendTime(b, t)
	}
	if r.Preferences != nil {
		b = binary.AppendUvarint(b, uint64(len(r.Preferences)))
		for _, k := range slices.Sorted(maps.Keys(r.Preferences)) {
			b = appendString(appendString(b, k), r.Preferences[k])
		}
	}
	return b
}

// encodeSession returns s in the binary session format, without its token hash.
func encodeSession(s *SessionRecord) []byte {
	b := make([]byte, 0, 8+len(s.ID)+len(s.UserID)+3*14)
	b = appendString(append(b, recordFormat), s.ID)
	b = appendString(b, s.UserID)
	b = binary.AppendVarint(b, s.UserGeneration)
	b = appendTime(b, s.CreatedAt)
	b = appendTime(b, s.ExpiresAt)
	return appendTime(b, s.LastSeenAt)
}

// encodeToken returns t in the binary token format, without its hash.
func encodeToken(t *TokenRecord) []byte {
	b := make([]byte, 0, 8+len(t.UserID)+len(t.Purpose)+len(t.Email)+2*14)
	b = appendString(append(b, recordFormat), t.UserID)
	b = appendString(b, string(t.Purpose))
	b = appendString(b, t.Email)
	b = appendTime(b, t.CreatedAt)
	return appendTime(b, t.ExpiresAt)
}

// decoder reads a binary record. It holds the record as one string, copied out of
// bbolt's memory once, and hands out the record's strings as slices of it, so a
// decoded record costs one allocation for all its text. A malformed record sets
// bad; the caller checks it once at the end.
type decoder struct {
	s   string
	off int
	bad bool
}

func newDecoder(v []byte) decoder {
	return decoderOf(string(v))
}

// decoderOf returns a decoder of the record s, whose strings it hands out as
// slices of s.
func decoderOf(s string) decoder {
	d := decoder{s: s}
	if len(d.s) == 0 || d.s[0] != recordFormat {
		d.bad = true
		d.off = len(d.s)
	} else {
		d.off = 1
	}
	return d
}

func (d *decoder) byte() byte {
	if d.off >= len(d.s) {
		d.bad = true
		return 0
	}
	c := d.s[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c := d.byte()
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	d.bad = true
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.off) {
		d.bad = true
		d.off = len(d.s)
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) time() time.Time {
	ns := d.uvarint()
	if ns == 0 {
		return time.Time{}
	}
	if ns > 1e9 {
		d.bad = true
		return time.Time{}
	}
	return time.Unix(d.varint(), int64(ns-1)).UTC()
}

// done reports a malformed record, or bytes left over after it, as ErrCorrupt.
func (d *decoder) done(what string) error {
	if d.bad || d.off != len(d.s) {
		return fmt.Errorf("%w: %s record: malformed (format %d, %d bytes)", ErrCorrupt, what, recordFormat, len(d.s))
	}
	return nil
}

// decodeUser decodes the user record v stored under the key id.
func decodeUser(id, v []byte) (*UserRecord, error) {
	return decodeUserID(string(id), v)
}

// decodeUserID is decodeUser for an ID the caller has as a string already.
func decodeUserID(id string, v []byte) (*UserRecord, error) {
	r := &UserRecord{}
	if err := decodeUserTo(r, id, newDecoder(v)); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeUserTo fills r with the user record d holds, stored under the key id.
func decodeUserTo(r *UserRecord, id string, d decoder) error {
	flags := d.byte()
	r.ID = id
	r.EmailVerified = flags&userEmailVerified != 0
	r.Email = d.string()
	r.Username = d.string()
	r.FirstName = d.string()
	r.LastName = d.string()
	r.Role = Role(d.string())
	r.Status = Status(d.string())
	r.AvatarURL = d.string()
	r.AccountID = d.string()
	r.PasswordHash = d.string()
	r.Generation = d.varint()
	r.EmailVerifiedAt = d.time()
	r.CreatedAt = d.time()
	r.UpdatedAt = d.time()
	r.LastLoginAt = d.time()
	if flags&userHasPreferences != 0 {
		n := d.uvarint()
		if n > uint64(len(d.s)) {
			d.bad = true
			n = 0
		}
		r.Preferences = make(map[string]string, n)
		for range n {
			k := d.string()
			r.Preferences[k] = d.string()
		}
	}
	return d.done("user")
}

// decodeSession decodes the session record v stored under the token hash key.
func decodeSession(key, v []byte) (*SessionRecord, error) {
	s := &SessionRecord{TokenHash: append([]byte(nil), key...)}
	if err := decodeSessionTo(s, newDecoder(v)); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeSessionTo fills s, all but its TokenHash, with the session record d
// holds.
func decodeSessionTo(s *SessionRecord, d decoder) error {
	s.ID = d.string()
	s.UserID = d.string()
	s.UserGeneration = d.varint()
	s.CreatedAt = d.time()
	s.ExpiresAt = d.time()
	s.LastSeenAt = d.time()
	return d.done("session")
}

// sessionUserID returns the UserID of the session record v, read in place: the
// second string of the session format. The rest of v is checked when it is
// decoded.
func sessionUserID(v []byte) ([]byte, bool) {
	if len(v) == 0 || v[0] != recordFormat {
		return nil, false
	}
	v = v[1:]
	var field []byte
	for range 2 { // ID, then UserID
		n, w := binary.Uvarint(v)
		if w <= 0 || n > uint64(len(v)-w) {
			return nil, false
		}
		field, v = v[w:w+int(n)], v[w+int(n):]
	}
	return field, true
}

// decodeToken decodes the token record v stored under the hash key.
func decodeToken(key, v []byte) (*TokenRecord, error) {
	d := newDecoder(v)
	t := &TokenRecord{Hash: append([]byte(nil), key...)}
	t.UserID = d.string()
	t.Purpose = Purpose(d.string())
	t.Email = d.string()
	t.CreatedAt = d.time()
	t.ExpiresAt = d.time()
	if err := d.done("token"); err != nil {
		return nil, err
	}
	return t, nil
}

func decodeAttempts(v []byte) (LoginAttempts, error) {
	var a LoginAttempts
	if err := json.Unmarshal(v, &a); err != nil {
		return LoginAttempts{}, fmt.Errorf("%w: login attempts record: %w", ErrCorrupt, err)
	}
	return a, nil
}

// Key encodings.

// timeKey encodes t so that byte order is time order, for every time.Time:
// seconds since 1970 with the sign bit flipped, then nanoseconds.
func timeKey(t time.Time) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(k, uint32(t.Nanosecond()))
}

const timeKeyLen = 12

func expiryKey(t time.Time, key []byte) []byte {
	return append(timeKey(t), key...)
}

// lp appends x prefixed with its length.
func lp(dst []byte, x string) []byte {
	return append(binary.BigEndian.AppendUint16(dst, uint16(len(x))), x...)
}

// cutLP splits k into the length-prefixed string at its start and the rest.
func cutLP(k []byte) (x string, rest []byte, ok bool) {
	if len(k) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(k))
	if len(k) < 2+n {
		return "", nil, false
	}
	return string(k[2 : 2+n]), k[2+n:], true
}

func sessionUserKey(userID, sessionID string) []byte {
	return append(lp(nil, userID), sessionID...)
}

func tokenUserKey(userID string, p Purpose, hash []byte) []byte {
	return append(lp(lp(nil, userID), string(p)), hash...)
}

// checkIDLen refuses an ID that would not fit its length prefix.
func checkIDLen(id string) error {
	if len(id) > bbolt.MaxKeySize/2 {
		return fmt.Errorf("users: bolt store: ID of %d bytes is too long", len(id))
	}
	return nil
}
