package main

import (
	"context"
	"time"
)

// The work queued after a 202 answer (a mail to send), done by one worker in
// order, away from the answer.

// Wait waits for the work queued after 202 answers to finish. Call it after
// http.Server.Shutdown and before closing the store.
func (s *Server) Wait() { s.bg.Wait() }

// enqueue hands fn to the one mail worker and returns at once. A request that
// names an account and one that does not both cost the handler exactly this: a
// lock, an append and (when the worker is idle) starting it. The worker does
// the store reads and writes one request after another, away from the answers,
// so neither the answer nor its timing depends on what it finds.
func (s *Server) enqueue(kind string, fn func(ctx context.Context)) {
	limit := s.MaxQueued
	if limit <= 0 {
		limit = 1000
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= limit {
		s.logger().Warn("mail queue full: request dropped", "kind", kind)
		return
	}
	s.queue = append(s.queue, fn)
	s.bg.Add(1)
	if !s.working {
		s.working = true
		go s.work()
	}
}

// work runs the queued work in order until the queue is empty.
func (s *Server) work() {
	timeout := s.BackgroundTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.working = false
			s.mu.Unlock()
			return
		}
		fn := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		fn(ctx)
		cancel()
		s.bg.Done()
	}
}
