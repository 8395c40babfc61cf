package main

import (
	"fmt"
	"net/http"
)

// Error pages. Every failure the site shows is a page in its layout: a
// missing page gets the notfound template, and a failure of the site itself
// (an error from the store, a panic in a handler, a template that does not
// render) gets the error template, with the request's ID for support and no
// detail: the detail goes to the log only.

// notFound answers every path no route matches.
func (a *App) notFound(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusNotFound, "notfound", page{Title: "Page not found"})
}

// serverError logs err with the request's ID and shows the error page.
func (a *App) serverError(w http.ResponseWriter, r *http.Request, op string, err error) {
	a.log.ErrorContext(r.Context(), op, "err", err, "request_id", requestID(r))
	a.render(w, r, http.StatusInternalServerError, "error", page{Title: "Something went wrong", Data: requestID(r)})
}

// recoverPanics turns a handler's panic into the error page, logged, instead of
// net/http's dropped connection. http.ErrAbortHandler is re-raised: it is how
// a handler asks net/http to abort the response.
func (a *App) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			if rec, ok := w.(*statusRecorder); ok && rec.status != 0 {
				// The response has begun: the page cannot be replaced.
				a.log.ErrorContext(r.Context(), "panic after the response began", "err", fmt.Sprint(v), "request_id", requestID(r))
				return
			}
			a.serverError(w, r, "panic", fmt.Errorf("%v", v))
		}()
		next.ServeHTTP(w, r)
	})
}

// fallbackPage is the error page when the templates themselves fail: the
// site's style sheet, no template.
const fallbackPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Something went wrong · Example app</title><link rel="stylesheet" href="/static/style.css"></head>
<body><header><nav aria-label="Main"><a href="/" class="brand">Example app</a></nav></header>
<main><h1>Something went wrong</h1><p>Please try again in a moment.</p></main></body></html>
`
