package users

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/oklog/ulid/v2"
)

// The MemoryStore's audit log. Entries are kept in lists sorted by ID: one of
// every entry, and one per subject (UserID) and per actor (ActorID). Since an
// entry's ID is a ULID whose timestamp is its Time in milliseconds (see
// AuditEntry.ID), a time range is a range of IDs too: ListAudit walks one list
// backwards from the first ID its bounds allow and stops at the first ID they
// exclude, so a question by user, actor or time reads about as many entries as
// it returns, and DeleteAuditBefore cuts a prefix of each list it touches.

// memAuditLog is the MemoryStore's audit log. m.mu guards it.
type memAuditLog struct {
	all     []*AuditEntry            // every entry, ascending ID
	byUser  map[string][]*AuditEntry // by UserID, ascending ID
	byActor map[string][]*AuditEntry // by ActorID, ascending ID
}

// keepAudit stores copies of the entries of audit whose Type is set. m.mu must
// be held for writing.
func (m *MemoryStore) keepAudit(audit []*AuditEntry) {
	for _, e := range audit {
		if e == nil || e.Type == "" {
			continue
		}
		c := e.Clone()
		l := &m.audit
		l.all = insertByID(l.all, c)
		if c.UserID != "" {
			if l.byUser == nil {
				l.byUser = make(map[string][]*AuditEntry)
			}
			l.byUser[c.UserID] = insertByID(l.byUser[c.UserID], c)
		}
		if c.ActorID != "" {
			if l.byActor == nil {
				l.byActor = make(map[string][]*AuditEntry)
			}
			l.byActor[c.ActorID] = insertByID(l.byActor[c.ActorID], c)
		}
	}
}

// insertByID inserts e into list, which is sorted by ID. New entries mostly
// have the greatest ID: they are appended without a search.
func insertByID(list []*AuditEntry, e *AuditEntry) []*AuditEntry {
	if n := len(list); n == 0 || list[n-1].ID < e.ID {
		return append(list, e)
	}
	i := searchID(list, e.ID)
	return slices.Insert(list, i, e)
}

// searchID returns the position of the first entry of list whose ID is not
// less than id.
func searchID(list []*AuditEntry, id string) int {
	return sort.Search(len(list), func(i int) bool { return list[i].ID >= id })
}

// idAt returns the least ULID of the millisecond of t, or of the one after
// it when next is set: an entry made at t has an ID at or above idAt(t, false)
// and below idAt(t, true). Times before 1970 give the least ULID.
func idAt(t time.Time, next bool) string {
	var u ulid.ULID
	if t.Before(time.Unix(0, 0)) {
		return u.String()
	}
	ms := ulid.Timestamp(t)
	if next {
		ms++
	}
	if u.SetTime(ms) != nil {
		u.SetTime(ulid.MaxTime())
	}
	return u.String()
}

// AppendAudit stores copies of the entries whose Type is set, in one step.
// It is safe for concurrent use.
func (m *MemoryStore) AppendAudit(ctx context.Context, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keepAudit(audit)
	return nil
}

// ListAudit returns copies of at most q.Limit entries that q selects, newest
// (greatest ID) first, below q.Before when it is set. It walks the list of
// q.UserID's or q.ActorID's entries (the shorter) or of all entries, from the
// greatest ID that q.Before and q.Until allow down to the least that q.Since
// allows, so a question by user, actor or time costs about what it returns.
// It is safe for concurrent use.
func (m *MemoryStore) ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(q.UserID)).RUnlock()
	out := []*AuditEntry{}
	if q.Limit <= 0 {
		return out, nil
	}
	l := &m.audit
	list := l.all
	switch {
	case q.UserID != "" && q.ActorID != "":
		list = l.byUser[q.UserID]
		if a := l.byActor[q.ActorID]; len(a) < len(list) {
			list = a
		}
	case q.UserID != "":
		list = l.byUser[q.UserID]
	case q.ActorID != "":
		list = l.byActor[q.ActorID]
	}
	hi := len(list)
	if q.Before != "" {
		hi = searchID(list, q.Before)
	}
	if !q.Until.IsZero() {
		hi = min(hi, searchID(list, idAt(q.Until, true)))
	}
	low := ""
	if !q.Since.IsZero() {
		low = idAt(q.Since, false)
	}
	for i := hi - 1; i >= 0 && len(out) < q.Limit; i-- {
		e := list[i]
		if e.ID < low {
			break
		}
		if q.Matches(e) {
			out = append(out, e.Clone())
		}
	}
	return out, nil
}

// DeleteAuditBefore deletes every entry whose Time is before t and returns how
// many it deleted. The entries it deletes lie at the start of each list (all
// but those of t's own millisecond, which it checks one by one), so its cost
// grows with the number deleted. It is safe for concurrent use.
func (m *MemoryStore) DeleteAuditBefore(ctx context.Context, t time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := &m.audit
	hi := idAt(t, true)
	users, actors := map[string]bool{}, map[string]bool{}
	for _, e := range l.all[:searchID(l.all, hi)] {
		if e.Time.Before(t) {
			users[e.UserID], actors[e.ActorID] = true, true
		}
	}
	var n int
	l.all, n = cutBefore(l.all, hi, t)
	for id := range users {
		if id != "" {
			cutIndex(l.byUser, id, hi, t)
		}
	}
	for id := range actors {
		if id != "" {
			cutIndex(l.byActor, id, hi, t)
		}
	}
	return n, nil
}

// cutIndex cuts the entries before t from index[key].
func cutIndex(index map[string][]*AuditEntry, key, hi string, t time.Time) {
	list, _ := cutBefore(index[key], hi, t)
	if len(list) == 0 {
		delete(index, key)
		return
	}
	index[key] = list
}

// cutBefore deletes from list, sorted by ID, the entries whose Time is before
// t, all of which have IDs below hi (idAt(t, true)), and returns the list and
// how many it deleted. It reads only the entries below hi.
func cutBefore(list []*AuditEntry, hi string, t time.Time) ([]*AuditEntry, int) {
	j := searchID(list, hi)
	w := j // list[w:j] will hold the kept entries of list[:j]
	for i := j - 1; i >= 0; i-- {
		if !list[i].Time.Before(t) {
			w--
			list[w] = list[i]
		}
	}
	n := w
	clear(list[:w])
	list = list[w:]
	if n > cap(list) { // most of the array is gone: let it go
		list = slices.Clone(list)
	}
	return list, n
}
