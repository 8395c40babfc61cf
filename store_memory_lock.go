package users

import "sync"

// memLockShards is how many read locks a memLock has.
const memLockShards = 8

// memLock is the MemoryStore's readers-writer lock, made of memLockShards
// sync.RWMutexes on cache lines of their own. A reader takes one of them,
// picked by a key of its question (the token hash of a session lookup, say), so
// readers on different cores seldom write to one cache line: with a single
// RWMutex every read lock is an atomic add on one shared counter, and two cores
// validating tokens would spend much of their time passing that line between
// them. A writer takes every one, in order, which costs a few tens of
// nanoseconds more per write.
type memLock struct {
	shards [memLockShards]struct {
		sync.RWMutex
		_ [64 - 24]byte // a sync.RWMutex is 24 bytes: one per 64-byte line
	}
}

// Lock locks l for writing: no reader or other writer holds any shard.
func (l *memLock) Lock() {
	for i := range l.shards {
		l.shards[i].Lock()
	}
}

// Unlock undoes Lock.
func (l *memLock) Unlock() {
	for i := range l.shards {
		l.shards[i].Unlock()
	}
}

// rlock locks l for reading, with the shard picked by k, and returns the lock
// to RUnlock. Readers write "defer m.mu.rlock(lastByte(key)).RUnlock()": the
// deferred call's receiver, rlock's result, is evaluated at once.
func (l *memLock) rlock(k byte) *sync.RWMutex {
	s := &l.shards[k%memLockShards].RWMutex
	s.RLock()
	return s
}

// lastByte returns the last byte of key, or 0, to pick a read lock by.
func lastByte[K ~string | ~[]byte](key K) byte {
	if len(key) == 0 {
		return 0
	}
	return key[len(key)-1]
}
