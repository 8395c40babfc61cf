package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// syncBuffer is a log sink that tests can read while the app writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// site is an App on a memory store behind an HTTPS test server, with the dev
// mailer logging into a buffer.
type site struct {
	app   *App
	users *users.Manager
	store *tracingStore
	srv   *httptest.Server
	log   *syncBuffer
	clock *storetest.Clock // the Manager's and the App's; it stands still until advanced
}

// newSite starts a site. dev selects plain HTTP and development cookies. The
// Manager has the site's options (managerOptions) with bcrypt cost 4, three
// failed logins before a lock, the test MFA key, and a fake clock set to now
// (browsers compare cookie expiry with their own clock).
func newSite(tb testing.TB, dev bool) *site { return newSiteBreach(tb, dev, nil) }

// newSiteBreach starts a site whose Manager has the breach checker.
func newSiteBreach(tb testing.TB, dev bool, breached users.BreachChecker) *site {
	tb.Helper()
	return startSite(tb, dev, "127.0.0.1", func(o *users.Options, _ string) { o.BreachChecker = breached })
}

// startSite starts a site whose App's base URL names host (the server
// listens on 127.0.0.1; "localhost" reaches it too), with the Manager's
// options changed by configure, which gets that base URL.
func startSite(tb testing.TB, dev bool, host string, configure func(o *users.Options, base string)) *site {
	tb.Helper()
	// The Manager and the App are made once the URL is known.
	srv := httptest.NewUnstartedServer(nil)
	if dev {
		srv.Start()
	} else {
		srv.StartTLS()
	}
	base := strings.Replace(srv.URL, "127.0.0.1", host, 1)
	store := &tracingStore{Store: users.NewMemoryStore()}
	clock := storetest.NewClock()
	clock.Advance(time.Since(clock.Now()))
	opts := managerOptions(4, true, defaultIdleTimeout) // cost 4: tests only
	opts.MaxFailedLogins = 3
	opts.MFAKeys = []users.MFAKey{storetest.MFAKey}
	opts.Now = clock.Now
	configure(opts, base)
	m, err := users.New(store, opts)
	if err != nil {
		srv.Close()
		tb.Fatal(err)
	}
	s := &site{users: m, store: store, srv: srv, log: &syncBuffer{}, clock: clock}
	logger := slog.New(slog.NewTextHandler(s.log, nil))
	s.app, err = NewApp(Config{Users: m, Logger: logger, BaseURL: base, Dev: dev, Now: clock.Now})
	if err != nil {
		s.srv.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.srv.Close() // no more requests, so nothing more is queued
		s.app.Close()
	})
	s.srv.Config.Handler = s.app.Handler()
	return s
}

// user creates an active user with a confirmed email.
func (s *site) user(tb testing.TB, nu users.NewUser) *users.User {
	tb.Helper()
	ctx := tb.Context()
	u, err := s.users.Create(ctx, nu)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := s.users.RequestEmailVerification(ctx, u.ID)
	if err != nil {
		tb.Fatal(err)
	}
	if u, err = s.users.VerifyEmail(ctx, d.Token); err != nil {
		tb.Fatal(err)
	}
	return u
}

var mailLine = regexp.MustCompile(`msg="dev mailer: would send" to=(\S+) subject="([^"]*)" link="?([^"\s]*)"?`)

// mails returns the dev mailer's messages so far to the address, as
// "subject link" strings.
func (s *site) mails(to string) []string {
	var out []string
	for _, m := range mailLine.FindAllStringSubmatch(s.log.String(), -1) {
		if m[1] == to {
			out = append(out, m[2]+" "+m[3])
		}
	}
	return out
}

// link waits for the mail worker to finish the jobs queued so far, and
// returns the link of the last mail with the subject to the address.
func (s *site) link(tb testing.TB, to, subject string) string {
	tb.Helper()
	s.drain(tb)
	ms := s.mails(to)
	for i := len(ms) - 1; i >= 0; i-- {
		if strings.HasPrefix(ms[i], subject+" ") {
			return strings.TrimPrefix(ms[i], subject+" ")
		}
	}
	tb.Fatalf("no mail %q to %s; mails: %q", subject, to, ms)
	return ""
}

// waitMails waits for the mail worker to finish the jobs queued so far, and
// fails tb unless the address has had more than n mails.
func (s *site) waitMails(tb testing.TB, to string, n int) {
	tb.Helper()
	s.drain(tb)
	if len(s.mails(to)) <= n {
		tb.Fatalf("no new mail to %s; mails: %q", to, s.mails(to))
	}
}

// drain waits until the mail worker has done every job queued so far: it
// runs them one at a time in order, and a handler queues its mail before it
// answers. It gives up after 10 seconds (a worker held by pause never gets
// there).
func (s *site) drain(tb testing.TB) {
	tb.Helper()
	done := make(chan struct{})
	if err := s.app.work.enqueue(tb.Context(), func(context.Context) { close(done) }); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		tb.Fatal("the mail worker did not get through its queue within 10s")
	}
}

// pause blocks the mail worker until the returned func is called, so that a
// test can see what a request does on its own path.
func (s *site) pause(tb testing.TB) (resume func()) {
	tb.Helper()
	release, started := make(chan struct{}), make(chan struct{})
	err := s.app.work.enqueue(tb.Context(), func(context.Context) {
		close(started)
		<-release
	})
	if err != nil {
		tb.Fatal(err)
	}
	<-started
	var once sync.Once
	resume = func() { once.Do(func() { close(release) }) }
	tb.Cleanup(resume)
	return resume
}
