package users

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
	"go.etcd.io/bbolt"
)

// The audit log of the bbolt store. Entries are records in the bucket audit,
// keyed by their ID, with three indexes (see the layout in store_bolt_schema.go):
// by subject (audit.user), by actor (audit.actor) and by type (audit.type), each
// lp(value) + ID, so that one user's, actor's or type's entries are a key range
// in ID order.
//
// There is no index by time: the Manager makes each ID a ULID of its entry's
// Time (AuditEntry.ID), so the log's own key order is time order, to the
// millisecond. The entries for which that does not hold (see below) are listed
// in audit.irregular by timeKey(Time) + ID. DeleteAuditBefore walks the log
// from its oldest end and audit.irregular from its oldest end.
//
// ListAudit walks newest first through the most selective source q has (the
// subject's range, the actor's, the types' ranges merged, or the whole log) and
// checks each entry against q, so a page costs about Limit entries plus those it
// skips. A time range narrows the walk through the IDs: the Manager makes each
// ID a ULID of its entry's Time (AuditEntry.ID), so no entry of the range can
// have an ID above the ULIDs of Until's millisecond or below those of Since's,
// and the walk starts and stops there. An entry whose ID is not such a ULID
// (another Store user's, say) would break that, so audit.irregular lists them:
// while it is not empty, a time range narrows nothing, and listings stay correct,
// only slower.

// checkAudit refuses, before anything is written, audit entries that cannot be
// stored: one without an ID, or with an ID, subject, actor or type too long for
// its key. Entries without a Type are skipped here as everywhere.
func checkAudit(audit []*AuditEntry) error {
	for _, e := range audit {
		if e == nil || e.Type == "" {
			continue
		}
		if e.ID == "" {
			return fmt.Errorf("users: bolt store: audit entry of type %s without an ID", e.Type)
		}
		for _, s := range []string{e.ID, e.UserID, e.ActorID, string(e.Type)} {
			if err := checkIDLen(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// hasAudit reports whether audit has an entry to write.
func hasAudit(audit []*AuditEntry) bool {
	for _, e := range audit {
		if e != nil && e.Type != "" {
			return true
		}
	}
	return false
}

// auditRegular reports whether e's ID is a ULID (in canonical form) of the
// millisecond of e's Time, as the Manager makes them.
func auditRegular(e *AuditEntry) bool {
	u, err := ulid.ParseStrict(e.ID)
	if err != nil || u.String() != e.ID {
		return false
	}
	ms := e.Time.UnixMilli()
	return ms >= 0 && u.Time() == uint64(ms)
}

// putAudit writes the entries of audit that have a Type, with their index
// entries. An entry with the ID of a stored one replaces it.
func (b *boltTx) putAudit(audit []*AuditEntry) error {
	for _, e := range audit {
		if err := b.putAuditEntry(e, false); err != nil {
			return err
		}
	}
	return nil
}

// putAuditEntry writes e, if it has a Type, with its index entries. A stored
// entry with e's ID is replaced, unless the caller knows that there is none
// (fresh) and the lookup can be skipped.
func (b *boltTx) putAuditEntry(e *AuditEntry, fresh bool) error {
	if e == nil || e.Type == "" {
		return nil
	}
	if !fresh {
		if err := b.deleteAudit([]byte(e.ID)); err != nil && err != ErrNotFound {
			return err
		}
	}
	if err := b.audit.Put([]byte(e.ID), encodeAudit(e)); err != nil {
		return err
	}
	return b.indexAudit(e)
}

// bucketKey is one index entry: a key in a bucket.
type bucketKey struct {
	bucket *bbolt.Bucket
	key    []byte
}

// auditIndexKeys returns the index entries of e.
func (b *boltTx) auditIndexKeys(e *AuditEntry) []bucketKey {
	keys := []bucketKey{
		{b.auditType, append(lp(nil, string(e.Type)), e.ID...)},
	}
	if e.UserID != "" {
		keys = append(keys, bucketKey{b.auditUser, append(lp(nil, e.UserID), e.ID...)})
	}
	if e.ActorID != "" {
		keys = append(keys, bucketKey{b.auditActor, append(lp(nil, e.ActorID), e.ID...)})
	}
	if !auditRegular(e) {
		keys = append(keys, bucketKey{b.auditIrreg, append(timeKey(e.Time), e.ID...)})
	}
	return keys
}

// indexAudit writes e's index entries.
func (b *boltTx) indexAudit(e *AuditEntry) error {
	for _, x := range b.auditIndexKeys(e) {
		if err := x.bucket.Put(x.key, present); err != nil {
			return err
		}
	}
	return nil
}

// deleteAudit deletes the entry with this ID and its index entries, or returns
// ErrNotFound.
func (b *boltTx) deleteAudit(id []byte) error {
	v := b.audit.Get(id)
	if v == nil {
		return ErrNotFound
	}
	e, err := decodeAudit(id, v)
	if err != nil {
		return err
	}
	for _, x := range b.auditIndexKeys(e) {
		if err := x.bucket.Delete(x.key); err != nil {
			return err
		}
	}
	return b.audit.Delete(id)
}

// AppendAudit writes audit entries in one write transaction, shared with
// concurrent writes; see Store. Without entries it writes nothing.
func (s *BoltStore) AppendAudit(ctx context.Context, audit ...*AuditEntry) error {
	if err := checkAudit(audit); err != nil {
		return err
	}
	if !hasAudit(audit) {
		return s.start(ctx)
	}
	return s.update(ctx, "append audit", func(b *boltTx) error {
		return b.putAudit(audit)
	})
}

// ListAudit returns a page of the audit log, newest first, from one read
// transaction; see Store and the description of the audit log above.
func (s *BoltStore) ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error) {
	out := []*AuditEntry{}
	if q.Limit <= 0 {
		return out, s.start(ctx)
	}
	err := s.view(ctx, "list audit", func(b *boltTx) error {
		var err error
		out, err = b.listAudit(ctx, &q)
		return err
	}, bucketAudit, bucketAuditUser, bucketAuditActor, bucketAuditType, bucketAuditIrreg)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ulidBound returns the smallest ULID string of millisecond ms.
func ulidBound(ms int64) string {
	var u ulid.ULID
	if err := u.SetTime(uint64(ms)); err != nil {
		return ""
	}
	return u.String()
}

func (b *boltTx) listAudit(ctx context.Context, q *AuditQuery) ([]*AuditEntry, error) {
	// The walk covers IDs in [lower, upper); empty means unbounded.
	upper, lower := q.Before, ""
	if k, _ := b.auditIrreg.Cursor().First(); k == nil {
		if !q.Until.IsZero() && q.Until.UnixMilli() >= 0 {
			if u := ulidBound(q.Until.UnixMilli() + 1); u != "" && (upper == "" || u < upper) {
				upper = u
			}
		}
		if !q.Since.IsZero() && q.Since.UnixMilli() > 0 {
			lower = ulidBound(q.Since.UnixMilli())
		}
	}
	var ranges []*auditRange
	switch {
	case q.UserID != "":
		ranges = append(ranges, newAuditRange(b.auditUser, lp(nil, q.UserID), upper))
	case q.ActorID != "":
		ranges = append(ranges, newAuditRange(b.auditActor, lp(nil, q.ActorID), upper))
	case len(q.Types) > 0:
		seen := map[EventType]bool{}
		for _, t := range q.Types {
			if !seen[t] {
				seen[t] = true
				ranges = append(ranges, newAuditRange(b.auditType, lp(nil, string(t)), upper))
			}
		}
	default:
		ranges = append(ranges, newAuditRange(b.audit, nil, upper))
	}
	out := []*AuditEntry{}
	for n := 1; len(out) < q.Limit; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		// The newest ID of the ranges; they hold distinct entries, except
		// when q.Types names one twice, which seen rules out.
		var top *auditRange
		for _, r := range ranges {
			if r.id != nil && (top == nil || bytes.Compare(r.id, top.id) > 0) {
				top = r
			}
		}
		if top == nil || (lower != "" && string(top.id) < lower) {
			break
		}
		id := bytes.Clone(top.id)
		top.prev()
		v := b.audit.Get(id)
		if v == nil {
			return nil, fmt.Errorf("%w: audit index entry points at missing entry %s", ErrCorrupt, id)
		}
		e, err := decodeAudit(id, v)
		if err != nil {
			return nil, err
		}
		if q.Matches(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// auditRange walks the IDs of one audit index range (keys prefix + ID; the
// audit bucket itself with an empty prefix) newest first.
type auditRange struct {
	c      *bbolt.Cursor
	prefix []byte
	id     []byte // the current ID, nil when the range is done
}

// newAuditRange starts a walk of the range of bucket under prefix at its newest
// ID below upper (empty: the newest of all).
func newAuditRange(bucket *bbolt.Bucket, prefix []byte, upper string) *auditRange {
	r := &auditRange{c: bucket.Cursor(), prefix: prefix}
	var k []byte
	if upper != "" {
		k, _ = r.c.Seek(append(bytes.Clone(prefix), upper...))
	} else if end := prefixEnd(prefix); end != nil {
		k, _ = r.c.Seek(end)
	}
	if k == nil {
		k, _ = r.c.Last()
	} else {
		k, _ = r.c.Prev()
	}
	r.set(k)
	return r
}

func (r *auditRange) set(k []byte) {
	r.id = nil
	if k != nil && bytes.HasPrefix(k, r.prefix) {
		r.id = k[len(r.prefix):]
	}
}

func (r *auditRange) prev() {
	k, _ := r.c.Prev()
	r.set(k)
}

// prefixEnd returns the smallest key after every key that starts with prefix,
// or nil if there is none (an empty prefix, or one of 0xff bytes only).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// DeleteAuditBefore deletes the audit entries older than t, oldest first, in
// write transactions of at most 1000 entries, so its cost grows with the
// number deleted; see Store. If ctx is cancelled between two transactions it
// returns the count so far and the context's error. When nothing is that old
// it writes nothing.
//
// The log is walked from its first key until an ID that is a ULID of a
// millisecond after t's: every later entry whose ID is such a ULID is at least
// that new, and the others are in audit.irregular, walked by time. An entry of
// audit.irregular whose ID sorts before the old ones but whose Time is not
// old is stepped over on each walk; the Manager never writes one.
func (s *BoltStore) DeleteAuditBefore(ctx context.Context, t time.Time) (int, error) {
	total := 0
	for {
		var found bool
		err := s.view(ctx, "delete audit", func(b *boltTx) error {
			found = b.auditPurgeDue(t)
			return nil
		}, bucketAudit, bucketAuditIrreg)
		if err != nil || !found {
			return total, err
		}
		n := 0
		err = s.update(ctx, "delete audit", func(b *boltTx) (err error) {
			n, err = b.purgeAudit(t, expiredBatch)
			return err
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < expiredBatch {
			return total, nil
		}
	}
}

// auditBoundDone reports whether the log's walk for a purge before t is done
// at key k: k is a ULID of a millisecond after t's, or there is no k.
func auditBoundDone(k []byte, t time.Time) bool {
	if k == nil {
		return true
	}
	u, err := ulid.ParseStrict(string(k))
	return err == nil && int64(u.Time()) > t.UnixMilli()
}

// auditPurgeDue reports whether a purge before t may have something to
// delete: an irregular entry older than t, or a first entry of the log that
// is not past t's millisecond.
func (b *boltTx) auditPurgeDue(t time.Time) bool {
	if k, _ := b.auditIrreg.Cursor().First(); k != nil && bytes.Compare(k[:timeKeyLen], timeKey(t)) < 0 {
		return true
	}
	k, _ := b.audit.Cursor().First()
	return !auditBoundDone(k, t)
}

// purgeAudit deletes at most limit entries older than t, those of
// audit.irregular first, and returns how many it deleted.
func (b *boltTx) purgeAudit(t time.Time, limit int) (int, error) {
	bound := timeKey(t)
	n, err := purgeIndex(b.auditIrreg, func(k []byte) bool {
		return len(k) >= timeKeyLen && bytes.Compare(k[:timeKeyLen], bound) < 0
	}, limit, b.deleteAudit)
	if err != nil || n >= limit {
		return n, err
	}
	var old [][]byte
	c := b.audit.Cursor()
	for k, v := c.First(); !auditBoundDone(k, t) && n+len(old) < limit; k, v = c.Next() {
		e, err := decodeAudit(k, v)
		if err != nil {
			return n, err
		}
		if e.Time.Before(t) {
			old = append(old, bytes.Clone(k))
		}
	}
	for _, id := range old {
		if err := b.deleteAudit(id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
