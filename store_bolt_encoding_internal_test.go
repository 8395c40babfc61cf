package users

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestDecoder_Malformed checks that the decoder refuses every truncation of a
// session and a user record, and a varint longer than 64 bits, as ErrCorrupt,
// and still decodes the whole records: a varint that runs off the end of a
// record must mark it bad, never read past it or stop short without saying so.
func TestDecoder_Malformed(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	s := &SessionRecord{ID: "01KDYAK56KPC4EKPTBDD58MX3X", UserID: "01KDYAK56KPC4EKPTBDD58MX3Y", UserGeneration: 300,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now.Add(time.Minute), IP: "192.0.2.1",
		UserAgent: "agent", Methods: []AuthMethod{MethodPassword, MethodTOTP}, SecondFactorAt: now,
		AuthenticatedAt: now, IdleTimeout: 90 * time.Minute}
	u := &UserRecord{User: User{ID: s.UserID, Email: "alice@example.com", Username: "alice", Role: RoleUser,
		Status: StatusActive, CreatedAt: now, UpdatedAt: now, LastActiveAt: now, ExternalID: "crm-42",
		Preferences: map[string]string{"theme": "dark"}}, PasswordHash: "hash", Generation: 300}
	decode := map[string]func(v []byte) error{
		"session": func(v []byte) error {
			var got SessionRecord
			return decodeSessionTo(&got, newDecoder(v))
		},
		"user": func(v []byte) error {
			var got UserRecord
			return decodeUserTo(&got, u.ID, newDecoder(v))
		},
	}
	for name, v := range map[string][]byte{"session": encodeSession(s), "user": encodeUser(u)} {
		if err := decode[name](v); err != nil {
			t.Fatalf("%s record: %v", name, err)
		}
		for n := range len(v) {
			if err := decode[name](v[:n]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s record cut to %d of %d bytes: %v, want ErrCorrupt", name, n, len(v), err)
			}
		}
	}
	d := newDecoder(append([]byte{recordFormat}, bytes.Repeat([]byte{0x80}, 10)...))
	if x := d.uvarint(); !d.bad || x != 0 {
		t.Errorf("a varint of 70 bits = %d, bad %v; want it bad", x, d.bad)
	}
}
