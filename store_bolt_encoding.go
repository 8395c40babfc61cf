package users

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Record encodings. Records are JSON so that a file can be inspected with the
// bbolt command; field names are part of the file format.

// boltUser is a UserRecord as stored. Its Preferences shadows User's, which is
// omitempty, so that an empty map comes back empty rather than nil.
type boltUser struct {
	User
	Preferences  map[string]string `json:"preferences"`
	PasswordHash string            `json:"password_hash,omitempty"`
	Generation   int64             `json:"generation,omitempty"`
}

func encodeUser(r *UserRecord) ([]byte, error) {
	return json.Marshal(boltUser{User: r.User, Preferences: r.Preferences, PasswordHash: r.PasswordHash, Generation: r.Generation})
}

func decodeUser(v []byte) (*UserRecord, error) {
	var bu boltUser
	if err := json.Unmarshal(v, &bu); err != nil {
		return nil, fmt.Errorf("%w: user record: %w", ErrCorrupt, err)
	}
	r := &UserRecord{User: bu.User, PasswordHash: bu.PasswordHash, Generation: bu.Generation}
	r.Preferences = bu.Preferences
	return r, nil
}

func decodeSession(v []byte) (*SessionRecord, error) {
	var s SessionRecord
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("%w: session record: %w", ErrCorrupt, err)
	}
	return &s, nil
}

func decodeToken(v []byte) (*TokenRecord, error) {
	var t TokenRecord
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, fmt.Errorf("%w: token record: %w", ErrCorrupt, err)
	}
	return &t, nil
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
