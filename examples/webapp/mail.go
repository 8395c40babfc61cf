package main

import (
	"context"
	"log/slog"
	"sync"
)

// Message is one email the site sends: a short text and the one link it is
// about.
type Message struct {
	To      string // the address as the store has it, never the typed input (a sign-up link: the normalized address)
	Subject string
	Text    string
	Link    string // absolute URL; may be empty
}

// Mailer delivers messages. Plug a real one (SMTP, an email API) in here; it
// must be safe for concurrent use. Send runs on the site's mail worker, never
// on a request's goroutine, so a slow mailer does not slow pages down or show
// in their timing.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// LogMailer is the development mailer: it logs each message with its link
// instead of sending it. Never use it with real users: the links it logs sign
// people in.
type LogMailer struct {
	Logger *slog.Logger
}

// Send logs m at Info level. It never fails and is safe for concurrent use.
func (l LogMailer) Send(ctx context.Context, m Message) error {
	l.Logger.InfoContext(ctx, "dev mailer: would send", "to", m.To, "subject", m.Subject, "link", m.Link)
	return nil
}

// worker runs jobs one at a time in order, off the request path. Handlers
// whose answer must not depend on whether an email has an account (sign-up,
// forgot password, magic link) do nothing but validate the form's shape and
// queue a job, so they take the same time and give the same page whatever the
// store holds; the job does the store work and sends the mail.
type worker struct {
	jobs chan func(context.Context)
	ctx  context.Context
	stop context.CancelFunc
	done sync.WaitGroup
}

func newWorker(queue int) *worker {
	ctx, stop := context.WithCancel(context.Background())
	w := &worker{jobs: make(chan func(context.Context), queue), ctx: ctx, stop: stop}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		for job := range w.jobs {
			job(w.ctx)
		}
	}()
	return w
}

// enqueue queues job, waiting for room while the queue is full, and gives up
// when ctx (the request's) ends first.
func (w *worker) enqueue(ctx context.Context, job func(context.Context)) error {
	select {
	case w.jobs <- job:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close runs the queued jobs and waits for them. enqueue must not be called
// after close.
func (w *worker) close() {
	close(w.jobs)
	w.done.Wait()
	w.stop()
}
