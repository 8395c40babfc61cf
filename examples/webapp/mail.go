package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/userkit/users/mail"
)

// Message is one email the site sends. The library's flows (verification,
// reset, magic link, invitation, the email-changed notice) are rendered from
// the default templates of github.com/userkit/users/mail (see mailKind); the
// site's own two notices set Subject, Text and Link themselves.
type Message = mail.Message

// Mailer delivers messages: mail.Mailer. Plug a real one (SMTP, an email API)
// in here; it must be safe for concurrent use. Send runs on the site's mail
// worker, never on a request's goroutine, so a slow mailer does not slow
// pages down or show in their timing.
type Mailer = mail.Mailer

// LogMailer is the development mailer: it logs each whole message, its link
// and its text body, instead of sending it. Never use it with real users: the
// links it logs sign people in.
type LogMailer struct {
	Logger *slog.Logger
}

// Send logs m at Info level. It never fails and is safe for concurrent use.
func (l LogMailer) Send(ctx context.Context, m Message) error {
	l.Logger.InfoContext(ctx, "dev mailer: would send", "to", m.To, "subject", m.Subject, "link", m.Link, "kind", m.Kind, "text", m.Text)
	return nil
}

// mailKind renders the kit's message of kind k for d and sends it; it runs
// on the mail worker.
func (a *App) mailKind(ctx context.Context, k mail.Kind, d mail.Data) {
	m, err := mail.Default().Render(k, d)
	if err != nil {
		a.log.ErrorContext(ctx, "rendering mail", "kind", k, "err", err)
		return
	}
	a.send(ctx, m)
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
