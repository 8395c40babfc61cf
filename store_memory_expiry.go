package users

import (
	"context"
	"time"
)

// DeleteExpired deletes every session, one-time token, MFA challenge, ceremony
// and login-throttle entry whose ExpiresAt is at or before now, and returns how
// many it deleted; a zero ExpiresAt is before every now. It keeps them all in a heap ordered by expiry,
// so its cost is O(k log n) for k deleted out of n stored. It is safe for
// concurrent use.
func (m *MemoryStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for len(m.expiry) > 0 && !m.expiry[0].at.After(now) {
		it := m.expiry[0]
		switch it.kind {
		case expirySession:
			m.deleteSession(it.key)
		case expiryToken:
			m.deleteToken(it.key)
		case expiryAttempts:
			m.deleteAttempts(it.key)
		case expiryChallenge:
			m.deleteChallenge(it.key)
		case expiryFlow:
			m.deleteFlow(it.key)
		case expiryCeremony:
			m.deleteCeremony(it.key)
		}
		n++
	}
	return n, nil
}

// The kinds of record an expiryItem stands for.
const (
	expirySession = iota
	expiryToken
	expiryAttempts
)

// expiryItem is one record's place in the expiry heap.
type expiryItem struct {
	at    time.Time // the record's ExpiresAt
	kind  int       // expirySession, expiryToken or expiryAttempts
	key   string    // the record's key in its map
	index int       // position in the heap, kept up to date by expiryHeap
}

// expiryHeap is a min-heap of expiryItems by time, for container/heap.
type expiryHeap []*expiryItem

func (h expiryHeap) Len() int { return len(h) }

func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }

func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *expiryHeap) Push(x any) {
	it := x.(*expiryItem)
	it.index = len(*h)
	*h = append(*h, it)
}

func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	it.index = -1
	return it
}
