package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
)

// sessionChannel is the channel migration 5's triggers notify on (see
// schema.go): its payloads are "<length of schema>:<schema><user ID>".
const sessionChannel = "userkit_sessions"

// DefaultSessionCacheTTL is how long a cached session is served without
// asking the database when Options.SessionCacheTTL is zero.
const DefaultSessionCacheTTL = 5 * time.Second

// defaultSessionCacheSize is the most sessions a cache holds when
// Options.SessionCacheSize is zero.
const defaultSessionCacheSize = 100_000

// Options configures NewWithOptions. A nil *Options, or the zero Options, is
// what New uses: a Store without a session cache.
type Options struct {
	// SessionCache, when true, makes GetSession, and so Manager.ValidateToken,
	// serve a session and its user it read in the last SessionCacheTTL from
	// process memory instead of the database. Every write that ends or
	// changes a session or its user, from any process, notifies every Store
	// through PostgreSQL's LISTEN/NOTIFY in its own transaction (triggers, see
	// schema.go), and each Store forgets that user's sessions when the
	// notification arrives: usually within milliseconds of the commit. The
	// Store that made the write forgets them before the method returns. The
	// cache is on only while its listening connection is: when it drops, the
	// cache empties and serves nothing until it has listened again. The
	// default is false.
	//
	// The bound: a session revoked or changed by a call that has returned is
	// never served as it was by the Store that made the call, and by no other
	// Store once SessionCacheTTL has passed since the call returned, whatever
	// happens to the notifications. Its cost is a goroutine and one
	// connection to the database (outside the pool) per Store: call Close.
	SessionCache bool

	// SessionCacheTTL is how long a cached session may be served, counted
	// from when the read that cached it began. Zero means
	// DefaultSessionCacheTTL (5 seconds); it must not be negative.
	SessionCacheTTL time.Duration

	// SessionCacheSize is the most sessions the cache holds; when it is full
	// it empties and starts again. Zero means 100,000; it must not be
	// negative.
	SessionCacheSize int

	// Now is the cache's clock, a test seam; nil means time.Now.
	Now func() time.Time
}

// NewWithOptions is New with options: see Options. It returns a
// *users.ValidationError naming the field for a negative SessionCacheTTL or
// SessionCacheSize, and New's errors otherwise. With SessionCache it starts
// listening in the background; the Store caches nothing until the listening
// connection is up. Call Close when done with such a Store.
func NewWithOptions(ctx context.Context, pool *pgxpool.Pool, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.SessionCacheTTL < 0:
		return nil, &users.ValidationError{Field: "SessionCacheTTL", Code: users.ValidationNegative, Reason: "must not be negative"}
	case o.SessionCacheSize < 0:
		return nil, &users.ValidationError{Field: "SessionCacheSize", Code: users.ValidationNegative, Reason: "must not be negative"}
	}
	s, err := New(ctx, pool)
	if err != nil || !o.SessionCache {
		return s, err
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("postgres: read current_schema: %w", err)
	}
	c := &sessionCache{
		ttl:    o.SessionCacheTTL,
		size:   o.SessionCacheSize,
		now:    o.Now,
		prefix: strconv.Itoa(len(schema)) + ":" + schema,
		done:   make(chan struct{}),
	}
	if c.ttl == 0 {
		c.ttl = DefaultSessionCacheTTL
	}
	if c.size == 0 {
		c.size = defaultSessionCacheSize
	}
	if c.now == nil {
		c.now = time.Now
	}
	lctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	go c.listen(lctx, pool.Config().ConnConfig.Copy())
	s.cache = c
	return s, nil
}

// Close stops a session cache's listening and waits for it to end. A Store
// without a cache has nothing to stop; Close does not close the pool. After
// Close the Store still works, without a cache. It is safe to call more than
// once, but not concurrently with other methods.
func (s *Store) Close() {
	if c := s.cache; c != nil {
		c.stopOnce.Do(func() {
			c.stop()
			<-c.done
		})
	}
}

// sessionCache is the Store's session cache (see Options.SessionCache).
//
// A read that would fill it takes a ticket first (begin): the epoch, which
// every forgetting and every change of state increments, and the time the read
// began. put keeps what the read found only if the epoch has not moved since,
// so a read that began before a write can never leave the old session behind
// after the write's forgetting; and an entry expires ttl after its read began,
// which is before the write that made it stale returned.
type sessionCache struct {
	ttl    time.Duration
	size   int
	now    func() time.Time
	prefix string // the payload prefix of this schema's notifications
	stop   context.CancelFunc
	done   chan struct{}

	stopOnce sync.Once

	mu sync.Mutex
	// before and after, if set, are called around the forgetting a
	// notification asks for: test hooks.
	before, after func(userID string)
	pid           uint32 // the listening connection's backend, for tests
	on            bool   // listening: entries may be served and kept
	epoch         uint64
	entries       map[string]*cacheEntry         // by token hash
	byUser        map[string]map[string]struct{} // user ID → token hashes
}

type cacheEntry struct {
	s       users.SessionRecord
	u       users.UserRecord
	expires time.Time
}

// get returns copies of the cached session with this token hash and its
// user, or ok false.
func (c *sessionCache) get(hash []byte) (*users.SessionRecord, *users.UserRecord, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[string(hash)]
	if e == nil || !c.on {
		return nil, nil, false
	}
	if !now.Before(e.expires) {
		c.drop(string(hash), e.u.ID)
		return nil, nil, false
	}
	return e.s.Clone(), e.u.Clone(), true
}

// ticket is what begin hands a read, for put.
type ticket struct {
	epoch uint64
	began time.Time
	ok    bool
}

func (c *sessionCache) begin() ticket {
	began := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return ticket{epoch: c.epoch, began: began, ok: c.on}
}

// put keeps copies of s and u, read under t, unless something was forgotten
// since t was taken.
func (c *sessionCache) put(t ticket, s *users.SessionRecord, u *users.UserRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.ok || !c.on || c.epoch != t.epoch {
		return
	}
	if len(c.entries) >= c.size {
		c.reset()
	}
	key := string(s.TokenHash)
	c.entries[key] = &cacheEntry{s: *s.Clone(), u: *u.Clone(), expires: t.began.Add(c.ttl)}
	hs := c.byUser[u.ID]
	if hs == nil {
		hs = map[string]struct{}{}
		c.byUser[u.ID] = hs
	}
	hs[key] = struct{}{}
}

// forgetUser drops every cached session of the user.
func (c *sessionCache) forgetUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for h := range c.byUser[userID] {
		delete(c.entries, h)
	}
	delete(c.byUser, userID)
}

// forgetToken drops the cached session with this token hash, and its user's
// others.
func (c *sessionCache) forgetToken(hash []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if e := c.entries[string(hash)]; e != nil {
		for h := range c.byUser[e.u.ID] {
			delete(c.entries, h)
		}
		delete(c.byUser, e.u.ID)
	}
}

// touched records a TouchSession of this Store in the cached session, so
// that the Manager does not touch it again at every validation.
func (c *sessionCache) touched(hash []byte, seen time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[string(hash)]; e != nil {
		if seen.After(e.s.LastSeenAt) {
			e.s.LastSeenAt = seen
		}
		if e.u.LastActiveAt.Before(seen) {
			e.u.LastActiveAt = seen
		}
	}
}

// drop removes one entry; c.mu is held.
func (c *sessionCache) drop(hash, userID string) {
	delete(c.entries, hash)
	if hs := c.byUser[userID]; hs != nil {
		delete(hs, hash)
		if len(hs) == 0 {
			delete(c.byUser, userID)
		}
	}
}

// reset empties the cache; c.mu is held.
func (c *sessionCache) reset() {
	c.epoch++
	c.entries = map[string]*cacheEntry{}
	c.byUser = map[string]map[string]struct{}{}
}

// setOn empties the cache and turns it on or off.
func (c *sessionCache) setOn(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
	c.on = on
}

// listen keeps a connection listening on sessionChannel until ctx ends,
// turning the cache on while it is up and off (and empty) while it is not,
// and forgets the users each notification names. It connects again after a
// failure, waiting a little longer each time, up to a second: after a
// failover, a connection string with several hosts and
// target_session_attrs=read-write finds the new primary.
func (c *sessionCache) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(c.done)
	wait := 10 * time.Millisecond
	for ctx.Err() == nil {
		if c.listenOnce(ctx, cfg) {
			wait = 10 * time.Millisecond
		}
		c.setOn(false)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// listenOnce connects, listens and handles notifications until the
// connection fails or ctx ends. It reports whether it got as far as
// listening.
func (c *sessionCache) listenOnce(ctx context.Context, cfg *pgx.ConnConfig) bool {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+sessionChannel); err != nil {
		return false
	}
	c.mu.Lock()
	c.pid = conn.PgConn().PID()
	c.mu.Unlock()
	c.setOn(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		userID, ok := strings.CutPrefix(n.Payload, c.prefix)
		if !ok {
			continue // another schema's
		}
		c.mu.Lock()
		before, after := c.before, c.after
		c.mu.Unlock()
		if before != nil {
			before(userID)
		}
		c.forgetUser(userID)
		if after != nil {
			after(userID)
		}
	}
}
