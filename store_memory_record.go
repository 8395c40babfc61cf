package users

import (
	"maps"
	"strings"
	"time"
)

// The MemoryStore keeps each user in a memUser: its texts packed into one string,
// its times as Unix seconds and nanoseconds, its role and status as small numbers:
// 136 bytes plus the text, where a UserRecord is 320 bytes plus its strings. The
// memUsers live in pages of memPageSize, so there is no per-user allocation
// besides the packed text. Every user has a slot number, its
// place in those pages, and the indexes hold slot numbers (4 bytes) rather than
// IDs or pointers.

// The fields of memUser.text, in order.
const (
	memID = iota
	memEmail
	memUsername
	memFirstName
	memLastName
	memAvatarURL
	memAccountID
	memExternalID
	memPasswordHash // runs to the end of text
	memTexts
)

// The times of memUser, in order.
const (
	memEmailVerifiedAt = iota
	memCreatedAt
	memUpdatedAt
	memLastLoginAt
	memLastActiveAt
	memTimes
)

// memUser is one user as a MemoryStore keeps it. It is 136 bytes on 64-bit
// platforms, plus the packed text.
type memUser struct {
	text  string              // the memTexts texts, one after another
	ends  [memTexts - 1]int32 // where each text but the last ends in text
	prefs map[string]string   // never shared with a caller
	gen   int64
	secs  [memTimes]int64 // Unix seconds
	nsecs [memTimes]int32 // and nanoseconds

	role, status uint16 // indexes into MemoryStore.roles and .statuses
	verified     bool   // EmailVerified
	live         bool   // the slot holds a user
}

// field returns text number i of u.
func (u *memUser) field(i int) string {
	start := int32(0)
	if i > 0 {
		start = u.ends[i-1]
	}
	if i == memTexts-1 {
		return u.text[start:]
	}
	return u.text[start:u.ends[i]]
}

func (u *memUser) id() string         { return u.field(memID) }
func (u *memUser) email() string      { return u.field(memEmail) }
func (u *memUser) username() string   { return u.field(memUsername) }
func (u *memUser) accountID() string  { return u.field(memAccountID) }
func (u *memUser) externalID() string { return u.field(memExternalID) }

func (u *memUser) time(i int) time.Time {
	return time.Unix(u.secs[i], int64(u.nsecs[i])).UTC()
}

// pack returns the memUser for r, with role and status given by number. It
// copies r's preferences.
func pack(r *UserRecord, role, status uint16) memUser {
	texts := [memTexts]string{r.ID, r.Email, r.Username, r.FirstName, r.LastName, r.AvatarURL, r.AccountID, r.ExternalID, r.PasswordHash}
	n := 0
	for _, t := range texts {
		n += len(t)
	}
	var b strings.Builder
	b.Grow(n)
	u := memUser{gen: r.Generation, role: role, status: status, verified: r.EmailVerified, live: true}
	for i, t := range texts {
		b.WriteString(t)
		if i < memTexts-1 {
			u.ends[i] = int32(b.Len())
		}
	}
	u.text = b.String()
	for i, t := range [memTimes]time.Time{r.EmailVerifiedAt, r.CreatedAt, r.UpdatedAt, r.LastLoginAt, r.LastActiveAt} {
		u.secs[i], u.nsecs[i] = t.Unix(), int32(t.Nanosecond())
	}
	if r.Preferences != nil {
		u.prefs = maps.Clone(r.Preferences)
	}
	return u
}

// view fills v with the texts, role, status and last activity of u, the
// fields Match looks at. It allocates nothing: v's strings share u's text.
func (m *MemoryStore) view(u *memUser, v *User) {
	v.ID = u.id()
	v.Email = u.email()
	v.Username = u.username()
	v.FirstName = u.field(memFirstName)
	v.LastName = u.field(memLastName)
	v.AccountID = u.accountID()
	v.Role = m.roles[u.role]
	v.Status = m.statuses[u.status]
	v.LastActiveAt = u.time(memLastActiveAt)
}

// unpack fills r with the user u. Its strings share u's text, which never
// changes; its preferences are a copy. Times come back in UTC.
func (m *MemoryStore) unpack(u *memUser, r *UserRecord) {
	m.view(u, &r.User)
	r.AvatarURL = u.field(memAvatarURL)
	r.ExternalID = u.externalID()
	r.PasswordHash = u.field(memPasswordHash)
	r.EmailVerified = u.verified
	r.EmailVerifiedAt = u.time(memEmailVerifiedAt)
	r.CreatedAt = u.time(memCreatedAt)
	r.UpdatedAt = u.time(memUpdatedAt)
	r.LastLoginAt = u.time(memLastLoginAt)
	r.LastActiveAt = u.time(memLastActiveAt)
	r.Preferences = nil
	if u.prefs != nil {
		r.Preferences = maps.Clone(u.prefs)
	}
	r.Generation = u.gen
}

// record returns a new UserRecord holding the user u.
func (m *MemoryStore) record(u *memUser) *UserRecord {
	r := new(UserRecord)
	m.unpack(u, r)
	return r
}

// memPageBits sets the size of the pages users are kept in: 4,096 users, 480 KB.
const (
	memPageBits = 12
	memPageSize = 1 << memPageBits
)

// user returns the user in slot. m.mu must be held.
func (m *MemoryStore) user(slot uint32) *memUser {
	return &m.pages[slot>>memPageBits][slot&(memPageSize-1)]
}

// idOf returns the ID of the user in slot. m.mu must be held.
func (m *MemoryStore) idOf(slot uint32) string { return m.user(slot).id() }

// newSlot returns a free slot, reusing one of a deleted user if there is one.
// m.mu must be held for writing.
func (m *MemoryStore) newSlot() uint32 {
	if n := len(m.free); n > 0 {
		s := m.free[n-1]
		m.free = m.free[:n-1]
		return s
	}
	s := m.slots
	if s>>memPageBits == uint32(len(m.pages)) {
		m.pages = append(m.pages, make([]memUser, memPageSize))
	}
	m.slots++
	return s
}

// freeSlot empties slot for reuse. m.mu must be held for writing.
func (m *MemoryStore) freeSlot(slot uint32) {
	*m.user(slot) = memUser{}
	m.free = append(m.free, slot)
}

// intern returns the number of v in the table of names, adding it if new. The
// tables only grow: a store sees few distinct roles and statuses.
func intern[T ~string](names *[]T, index map[T]uint16, v T) uint16 {
	if i, ok := index[v]; ok {
		return i
	}
	if len(*names) > 0xffff {
		panic("users: MemoryStore: more than 65,536 distinct roles or statuses")
	}
	i := uint16(len(*names))
	*names = append(*names, v)
	index[v] = i
	return i
}
