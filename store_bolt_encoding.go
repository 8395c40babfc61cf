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

// Record encodings (schema version 4). Users, sessions, one-time tokens and
// audit entries are kept in a compact binary form; login-throttle entries stay
// JSON, so that fields added to LoginAttempts flow through without a new format.
//
// Every binary record starts with its format byte, so that formats can be told
// apart (version 1 files held JSON, which starts with '{'). This code writes
// format recordFormat (4) and reads formats 1 (schema version 2), 2 (schema
// version 3), 3 (schema versions 4 to 7) and 4: format 2 appends fields to
// format 1's, marked "(2)" below, which a format 1 record lacks (they decode
// as zero), and formats 3 and 4 append those marked "(3)" and "(4)". After the format byte come the fields in a
// fixed order:
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
//	         preferences (uvarint) and each key and value (strings, by key),
//	         then (2) LastActiveAt (time), then if bit 2 is set (schema
//	         version 6) ExternalID (string)
//	session  ID, UserID (strings), UserGeneration (int), CreatedAt, ExpiresAt,
//	         LastSeenAt (times), then (2) IP, UserAgent (strings), the number
//	         of Methods (uvarint) and each (string), SecondFactorAt (time),
//	         then (3) AuthenticatedAt (time); a session of an older format
//	         decodes with AuthenticatedAt the later of CreatedAt and
//	         SecondFactorAt, the last proof it is known to have had; then (4)
//	         IdleTimeout (int, nanoseconds), zero in an older format
//	token    UserID, Purpose, Email (strings), CreatedAt, ExpiresAt (times)
//	audit    (2 only) flags (bit 0 Fields is not nil, bit 1 Data is not nil),
//	         Type, UserID, ActorID, SessionID, IP, UserAgent, Reason, Purpose
//	         (strings), Time (time), then if bit 0 is set the number of Fields
//	         (uvarint) and each (string), then if bit 1 is set the number of
//	         Data entries (uvarint) and each key and value (strings, by key)
//
// A record's own key is not repeated in it: the user ID, the session's token
// hash, the token's hash and the audit entry's ID come from the key the record is
// stored under.
const recordFormat = 4

const (
	auditHasFields = 1 << iota
	auditHasData
)

const (
	userEmailVerified = 1 << iota
	userHasPreferences
	userHasExternalID
)

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendStringMap appends m: its size, then each key and value, by key.
func appendStringMap(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = appendString(appendString(b, k), m[k])
	}
	return b
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
		len(r.Status) + len(r.AvatarURL) + len(r.AccountID) + len(r.PasswordHash) + 5*14
	for k, v := range r.Preferences {
		n += len(k) + len(v) + 4
	}
	var b []byte
	var flags byte
	if r.EmailVerified {
		flags |= userEmailVerified
	}
	if r.Preferences != nil {
		flags |= userHasPreferences
	}
	if r.ExternalID != "" {
		flags |= userHasExternalID
		n += len(r.ExternalID) + 2
	}
	b = make([]byte, 0, n)
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
		b = appendStringMap(b, r.Preferences)
	}
	b = appendTime(b, r.LastActiveAt)
	if r.ExternalID != "" {
		b = appendString(b, r.ExternalID)
	}
	return b
}

// encodeSession returns s in the binary session format, without its token hash.
func encodeSession(s *SessionRecord) []byte {
	n := 16 + len(s.ID) + len(s.UserID) + len(s.IP) + len(s.UserAgent) + 5*14 + 10
	for _, m := range s.Methods {
		n += len(m) + 2
	}
	b := make([]byte, 0, n)
	b = appendString(append(b, recordFormat), s.ID)
	b = appendString(b, s.UserID)
	b = binary.AppendVarint(b, s.UserGeneration)
	b = appendTime(b, s.CreatedAt)
	b = appendTime(b, s.ExpiresAt)
	b = appendTime(b, s.LastSeenAt)
	b = appendString(b, s.IP)
	b = appendString(b, s.UserAgent)
	b = binary.AppendUvarint(b, uint64(len(s.Methods)))
	for _, m := range s.Methods {
		b = appendString(b, string(m))
	}
	b = appendTime(b, s.SecondFactorAt)
	b = appendTime(b, s.AuthenticatedAt)
	return binary.AppendVarint(b, int64(s.IdleTimeout))
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

// encodeAudit returns e in the binary audit format, without its ID.
func encodeAudit(e *AuditEntry) []byte {
	n := 16 + len(e.Type) + len(e.UserID) + len(e.ActorID) + len(e.SessionID) + len(e.IP) +
		len(e.UserAgent) + len(e.Reason) + len(e.Purpose) + 14
	for _, f := range e.Fields {
		n += len(f) + 2
	}
	for k, v := range e.Data {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	var flags byte
	if e.Fields != nil {
		flags |= auditHasFields
	}
	if e.Data != nil {
		flags |= auditHasData
	}
	b = append(b, recordFormat, flags)
	for _, s := range []string{string(e.Type), e.UserID, e.ActorID, e.SessionID, e.IP, e.UserAgent,
		e.Reason, string(e.Purpose)} {
		b = appendString(b, s)
	}
	b = appendTime(b, e.Time)
	if e.Fields != nil {
		b = binary.AppendUvarint(b, uint64(len(e.Fields)))
		for _, f := range e.Fields {
			b = appendString(b, f)
		}
	}
	if e.Data != nil {
		b = appendStringMap(b, e.Data)
	}
	return b
}

// decoder reads a binary record. It holds the record as one string, copied out of
// bbolt's memory once, and hands out the record's strings as slices of it, so a
// decoded record costs one allocation for all its text. A malformed record sets
// bad; the caller checks it once at the end.
type decoder struct {
	s      string
	off    int
	format byte // the record's format byte: 1, 2 or 3
	bad    bool
}

func newDecoder(v []byte) decoder {
	return decoderOf(string(v))
}

// decoderOf returns a decoder of the record s, whose strings it hands out as
// slices of s.
func decoderOf(s string) decoder {
	d := decoder{s: s}
	if len(d.s) == 0 || d.s[0] == 0 || d.s[0] > recordFormat {
		d.bad = true
		d.off = len(d.s)
	} else {
		d.format, d.off = d.s[0], 1
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

// uvarint reads an unsigned varint; one that runs past the record or past 64
// bits marks d bad. It reads through locals rather than d.byte, which keeps
// the loop in registers: a record holds dozens of varints (two for every
// time), and every validation decodes two records.
func (d *decoder) uvarint() uint64 {
	s, off := d.s, d.off
	var x uint64
	for shift := uint(0); shift < 64 && off < len(s); shift += 7 {
		c := s[off]
		off++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			d.off = off
			return x
		}
	}
	d.bad, d.off = true, len(s)
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

// stringMap reads appendStringMap's map. A size larger than the record marks
// it bad.
func (d *decoder) stringMap() map[string]string {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.bad = true
		n = 0
	}
	m := make(map[string]string, n)
	for range n {
		k := d.string()
		m[k] = d.string()
	}
	return m
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
		return fmt.Errorf("%w: %s record: malformed (format %d, %d bytes)", ErrCorrupt, what, d.format, len(d.s))
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
	r.Preferences = nil
	if flags&userHasPreferences != 0 {
		r.Preferences = d.stringMap()
	}
	r.LastActiveAt = time.Time{}
	if d.format >= 2 {
		r.LastActiveAt = d.time()
	}
	r.ExternalID = ""
	if flags&userHasExternalID != 0 {
		r.ExternalID = d.string()
	}
	return d.done("user")
}

// sessionAlloc is a session record together with room for its usual Methods
// (a first and a second factor), so that decoding a session on the hot path
// costs no allocation for them.
type sessionAlloc struct {
	s       SessionRecord
	methods [2]AuthMethod
}

// decodeSession decodes the session record v stored under the token hash key.
func decodeSession(key, v []byte) (*SessionRecord, error) {
	a := &sessionAlloc{}
	a.s.TokenHash = append([]byte(nil), key...)
	a.s.Methods = a.methods[:0]
	if err := decodeSessionTo(&a.s, newDecoder(v)); err != nil {
		return nil, err
	}
	if len(a.s.Methods) == 0 {
		a.s.Methods = nil
	}
	return &a.s, nil
}

// decodeSessionTo sets every field of s but TokenHash to the session record d
// holds (those an older format lacks to their zero value); it appends the
// Methods to s.Methods[:0].
func decodeSessionTo(s *SessionRecord, d decoder) error {
	s.ID = d.string()
	s.UserID = d.string()
	s.UserGeneration = d.varint()
	s.CreatedAt = d.time()
	s.ExpiresAt = d.time()
	s.LastSeenAt = d.time()
	s.Methods = s.Methods[:0]
	if d.format >= 2 {
		s.IP = d.string()
		s.UserAgent = d.string()
		if n := d.uvarint(); n > uint64(len(d.s)) {
			d.bad = true
		} else {
			s.Methods = decodeMethods(s.Methods, n, &d)
		}
		s.SecondFactorAt = d.time()
	} else {
		s.IP, s.UserAgent, s.SecondFactorAt = "", "", time.Time{}
	}
	if d.format >= 3 {
		s.AuthenticatedAt = d.time()
	} else {
		s.AuthenticatedAt = later(s.CreatedAt, s.SecondFactorAt)
	}
	s.IdleTimeout = 0
	if d.format >= 4 {
		s.IdleTimeout = time.Duration(d.varint())
	}
	return d.done("session")
}

// decodeMethods appends the n methods d holds to room. Given no room (a nil
// or zero-capacity slice), it returns one of commonMethods when they are one
// of those, so that the common sessions cost no allocation; the caller must
// then not modify what it gets.
func decodeMethods(room []AuthMethod, n uint64, d *decoder) []AuthMethod {
	shared := cap(room) == 0
	var few [2]AuthMethod
	for i := range n {
		a := AuthMethod(d.string())
		if shared && i < uint64(len(few)) {
			few[i] = a
			continue
		}
		if shared { // a third method: no shared list has it
			room, shared = append(room, few[:]...), false
		}
		room = append(room, a)
	}
	if !shared {
		return room
	}
	got := few[:n]
	for _, c := range commonMethods {
		if slices.Equal(c, got) {
			return c
		}
	}
	if n == 0 {
		return nil
	}
	return slices.Clone(got)
}

// commonMethods are the Methods most sessions have, shared read-only by the
// sessions decodeMethods decodes without room.
var commonMethods = [...][]AuthMethod{
	{MethodPassword}, {MethodPassword, MethodTOTP}, {MethodPassword, MethodRecoveryCode},
	{MethodEmailLink}, {MethodEmailLink, MethodTOTP}, {MethodEmailLink, MethodRecoveryCode},
}

// sessionUserID returns the UserID of the session record v, read in place: the
// second string of the session format. The rest of v is checked when it is
// decoded.
func sessionUserID(v []byte) ([]byte, bool) {
	if len(v) == 0 || v[0] == 0 || v[0] > recordFormat {
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

// decodeAudit decodes the audit record v stored under the entry ID id.
func decodeAudit(id, v []byte) (*AuditEntry, error) {
	d := newDecoder(v)
	e := &AuditEntry{ID: string(id)}
	flags := d.byte()
	e.Type = EventType(d.string())
	e.UserID = d.string()
	e.ActorID = d.string()
	e.SessionID = d.string()
	e.IP = d.string()
	e.UserAgent = d.string()
	e.Reason = d.string()
	e.Purpose = Purpose(d.string())
	e.Time = d.time()
	if flags&auditHasFields != 0 {
		n := d.uvarint()
		if n > uint64(len(d.s)) {
			d.bad = true
			n = 0
		}
		e.Fields = make([]string, n)
		for i := range e.Fields {
			e.Fields[i] = d.string()
		}
	}
	if flags&auditHasData != 0 {
		e.Data = d.stringMap()
	}
	if d.format < 2 {
		d.bad = true // audit records exist from format 2 on
	}
	if err := d.done("audit"); err != nil {
		return nil, err
	}
	return e, nil
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

// The second factors' records (schema version 3), format 2 and later (format 3
// changed only sessions):
//
//	mfa        flags (bit 0 TOTP is set, bit 1 TOTP.Confirmed); if bit 0 is
//	           set, TOTP.Secret, TOTP.KeyID (strings), TOTP.CreatedAt,
//	           TOTP.ConfirmedAt (times), TOTP.LastStep (int); then
//	           RecoveryCodesAt (time) and the recovery code hashes: uvarint 0
//	           for a nil list, else their number + 1, then each (string)
//	challenge  UserID (string), UserGeneration (int), Methods (uvarint 0 for
//	           nil, else their number + 1, then each as a string), Attempts
//	           (int), CreatedAt, ExpiresAt (times)
//
// The user ID of an MFA record and the hash of a challenge are their keys.
const (
	mfaHasTOTP = 1 << iota
	mfaTOTPConfirmed
)

// appendCount appends n+1 for a list of n elements, or 0 for a nil one, so
// that a nil list and an empty one each come back as they went in.
func appendCount(b []byte, n int, isNil bool) []byte {
	if isNil {
		return append(b, 0)
	}
	return binary.AppendUvarint(b, uint64(n)+1)
}

// count reads appendCount's number: -1 for nil. A count larger than the bytes
// left marks the record bad.
func (d *decoder) count() int {
	n := d.uvarint()
	if n == 0 {
		return -1
	}
	if n-1 > uint64(len(d.s)-d.off) {
		d.bad = true
		return 0
	}
	return int(n - 1)
}

// encodeMFA returns r in the binary MFA format, without its user ID.
func encodeMFA(r *MFARecord) []byte {
	n := 24 + 33*len(r.RecoveryCodes)
	if r.TOTP != nil {
		n += len(r.TOTP.Secret) + len(r.TOTP.KeyID) + 40
	}
	b := make([]byte, 0, n)
	var flags byte
	if t := r.TOTP; t != nil {
		flags |= mfaHasTOTP
		if t.Confirmed {
			flags |= mfaTOTPConfirmed
		}
	}
	b = append(b, recordFormat, flags)
	if t := r.TOTP; t != nil {
		b = appendString(b, string(t.Secret))
		b = appendString(b, t.KeyID)
		b = appendTime(b, t.CreatedAt)
		b = appendTime(b, t.ConfirmedAt)
		b = binary.AppendVarint(b, t.LastStep)
	}
	b = appendTime(b, r.RecoveryCodesAt)
	b = appendCount(b, len(r.RecoveryCodes), r.RecoveryCodes == nil)
	for _, h := range r.RecoveryCodes {
		b = appendString(b, string(h))
	}
	return b
}

// decodeMFA decodes the MFA record v stored under the user ID key.
func decodeMFA(key, v []byte) (*MFARecord, error) {
	d := newDecoder(v)
	r := &MFARecord{UserID: string(key)}
	flags := d.byte()
	if flags&mfaHasTOTP != 0 {
		r.TOTP = &TOTPFactor{
			Secret:    []byte(d.string()),
			KeyID:     d.string(),
			Confirmed: flags&mfaTOTPConfirmed != 0,
		}
		r.TOTP.CreatedAt = d.time()
		r.TOTP.ConfirmedAt = d.time()
		r.TOTP.LastStep = d.varint()
	}
	r.RecoveryCodesAt = d.time()
	if n := d.count(); n >= 0 {
		r.RecoveryCodes = make([][]byte, n)
		for i := range r.RecoveryCodes {
			r.RecoveryCodes[i] = []byte(d.string())
		}
	}
	if err := d.done("MFA"); err != nil {
		return nil, err
	}
	return r, nil
}

// encodeChallenge returns c in the binary challenge format, without its hash.
func encodeChallenge(c *ChallengeRecord) []byte {
	b := make([]byte, 0, 16+len(c.UserID)+16*len(c.Methods)+2*14)
	b = appendString(append(b, recordFormat), c.UserID)
	b = binary.AppendVarint(b, c.UserGeneration)
	b = appendCount(b, len(c.Methods), c.Methods == nil)
	for _, m := range c.Methods {
		b = appendString(b, string(m))
	}
	b = binary.AppendVarint(b, int64(c.Attempts))
	b = appendTime(b, c.CreatedAt)
	return appendTime(b, c.ExpiresAt)
}

// decodeChallenge decodes the challenge record v stored under the hash key.
func decodeChallenge(key, v []byte) (*ChallengeRecord, error) {
	d := newDecoder(v)
	c := &ChallengeRecord{Hash: append([]byte(nil), key...)}
	c.UserID = d.string()
	c.UserGeneration = d.varint()
	if n := d.count(); n >= 0 {
		c.Methods = make([]AuthMethod, n)
		for i := range c.Methods {
			c.Methods[i] = AuthMethod(d.string())
		}
	}
	c.Attempts = int(d.varint())
	c.CreatedAt = d.time()
	c.ExpiresAt = d.time()
	if err := d.done("challenge"); err != nil {
		return nil, err
	}
	return c, nil
}

// challengeUserKey is the key of a challenge in the by-user index.
func challengeUserKey(userID string, hash []byte) []byte {
	return append(lp(nil, userID), hash...)
}
