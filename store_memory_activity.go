package users

import (
	"slices"
	"time"
)

// The MemoryStore's activity index, for Match.ActiveSince: the users who were
// ever active, bucketed by the UTC day of their LastActiveAt. A question for
// users active since t reads the buckets from t's day on and checks each user
// in them, so "who was active this week" costs what it finds, not what is
// stored. A TouchSession that moves a user's LastActiveAt moves the user to
// another bucket only when the day changes: two map operations.
//
// Match.InactiveSince (dormant accounts, usually most of them) walks the
// role, status or account list the rest of the Match picks and checks each
// user: a listing stops when its page is full.

// memActivity is the activity index. m.mu guards it.
type memActivity struct {
	days  []int64                       // the keys of byDay, ascending
	byDay map[int64]map[uint32]struct{} // day → slots of the users last active then
}

// activityDay is the UTC day number of t, or false for the zero time (never
// active), which is not indexed.
func activityDay(t time.Time) (int64, bool) {
	if t.IsZero() {
		return 0, false
	}
	s := t.Unix()
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return d, true
}

// add indexes slot as last active at t. m.mu must be held for writing.
func (a *memActivity) add(slot uint32, t time.Time) {
	d, ok := activityDay(t)
	if !ok {
		return
	}
	if a.byDay == nil {
		a.byDay = make(map[int64]map[uint32]struct{})
	}
	set := a.byDay[d]
	if set == nil {
		set = make(map[uint32]struct{})
		a.byDay[d] = set
		if n := len(a.days); n == 0 || a.days[n-1] < d {
			a.days = append(a.days, d)
		} else {
			i, _ := slices.BinarySearch(a.days, d)
			a.days = slices.Insert(a.days, i, d)
		}
	}
	set[slot] = struct{}{}
}

// remove unindexes slot, indexed as last active at t. m.mu must be held for
// writing.
func (a *memActivity) remove(slot uint32, t time.Time) {
	d, ok := activityDay(t)
	if !ok {
		return
	}
	set := a.byDay[d]
	delete(set, slot)
	if len(set) == 0 {
		delete(a.byDay, d)
		if i, found := slices.BinarySearch(a.days, d); found {
			a.days = slices.Delete(a.days, i, i+1)
		}
	}
}

// move reindexes slot from old to now, when their days differ.
func (a *memActivity) move(slot uint32, old, now time.Time) {
	d0, ok0 := activityDay(old)
	d1, ok1 := activityDay(now)
	if ok0 == ok1 && d0 == d1 {
		return
	}
	a.remove(slot, old)
	a.add(slot, now)
}

// since returns the slots of the users last active on or after since's day,
// in no order, and true; or false if there are more than limit of them, when
// walking a list of limit users is cheaper.
func (a *memActivity) since(since time.Time, limit int) ([]uint32, bool) {
	d, _ := activityDay(since)
	i, _ := slices.BinarySearch(a.days, d)
	n := 0
	for _, day := range a.days[i:] {
		n += len(a.byDay[day])
		if n > limit {
			return nil, false
		}
	}
	out := make([]uint32, 0, n)
	for _, day := range a.days[i:] {
		for s := range a.byDay[day] {
			out = append(out, s)
		}
	}
	return out, true
}

// setActive moves the LastActiveAt of the user in slot to seen, if seen is
// later. m.mu must be held for writing.
func (m *MemoryStore) setActive(slot uint32, seen time.Time) {
	u := m.user(slot)
	old := u.time(memLastActiveAt)
	if !seen.After(old) {
		return
	}
	u.secs[memLastActiveAt], u.nsecs[memLastActiveAt] = seen.Unix(), int32(seen.Nanosecond())
	m.activity.move(slot, old, seen)
}
