// Package usersotel bridges the events of package users to OpenTelemetry:
// a metric for every event, logins by outcome, account locks and refused
// input, and a span for every event in the trace of the request that caused
// it. It lives in its own module, so that an application that does not use
// OpenTelemetry never builds it.
//
// Install it as the Manager's event hook:
//
//	b, err := usersotel.New(nil) // the global MeterProvider and TracerProvider
//	...
//	m, err := users.New(store, &users.Options{OnEvent: b.OnEvent})
//
// and count refused input where the application handles errors:
//
//	if err != nil {
//		b.RecordError(r.Context(), err)
//		users.WriteError(w, err)
//	}
//
// The bridge records no secret and no personal data: no email, IP address or
// user agent, only event types, reasons, token purposes, and user and
// session IDs (opaque ULIDs) on spans.
package usersotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/userkit/users"
)

// ScopeName is the instrumentation scope of the bridge's meter and tracer.
const ScopeName = "github.com/userkit/users/otel"

// The names of the bridge's metrics (all counters) and of its attributes.
const (
	MetricEvents      = "users.events"            // every event; attributes type, reason, purpose
	MetricLogins      = "users.logins"            // logins: outcome, method, reason
	MetricLocks       = "users.account.locks"     // accounts locked: reason
	MetricValidations = "users.validation.errors" // refused input (RecordError): field, code

	AttrType    = attribute.Key("users.event.type")
	AttrReason  = attribute.Key("users.event.reason")
	AttrPurpose = attribute.Key("users.token.purpose")
	AttrOutcome = attribute.Key("users.login.outcome") // "success" or "failure"
	AttrMethod  = attribute.Key("users.login.method")  // a second factor's method, when the event names one
	AttrUserID  = attribute.Key("users.user.id")       // on spans only
	AttrSession = attribute.Key("users.session.id")    // on spans only
	AttrField   = attribute.Key("users.validation.field")
	AttrCode    = attribute.Key("users.validation.code")
)

// Options configures a Bridge. Nil Options, or zero fields, take the
// defaults.
type Options struct {
	// MeterProvider makes the bridge's counters. Default: the global one
	// (otel.GetMeterProvider), as it is when New is called.
	MeterProvider metric.MeterProvider
	// TracerProvider makes the events' spans. Default: the global one.
	TracerProvider trace.TracerProvider
	// Next, if set, is called with every event after the bridge has recorded
	// it, for another hook (a logger, a mailer of security notices):
	// users.Options has room for one.
	Next func(ctx context.Context, e users.AuditEntry)
}

// Bridge records events as metrics and spans. Make it with New; it is safe
// for concurrent use.
type Bridge struct {
	tracer      trace.Tracer
	events      metric.Int64Counter
	logins      metric.Int64Counter
	locks       metric.Int64Counter
	validations metric.Int64Counter
	next        func(ctx context.Context, e users.AuditEntry)
}

// New returns a Bridge for o (nil: the defaults). It returns the error of a
// MeterProvider that cannot make a counter.
func New(o *Options) (*Bridge, error) {
	if o == nil {
		o = &Options{}
	}
	mp, tp := o.MeterProvider, o.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	meter := mp.Meter(ScopeName)
	b := &Bridge{tracer: tp.Tracer(ScopeName), next: o.Next}
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{event}"))
		errs = append(errs, err)
		return c
	}
	b.events = counter(MetricEvents, "Events of the user manager, by type")
	b.logins = counter(MetricLogins, "Logins and second-factor checks, by outcome")
	b.locks = counter(MetricLocks, "Accounts and identifiers locked after failed logins")
	b.validations = counter(MetricValidations, "Input refused by the user manager, by field and code")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b, nil
}

// OnEvent records e: it is the hook for users.Options.OnEvent. It adds one
// to MetricEvents; to MetricLogins for login.succeeded (outcome success),
// login.failed and mfa.failed (failure), and mfa.verified (success); and to
// MetricLocks for account.locked. It makes a span named after the event
// type, at the event's time, in the trace of ctx (the context of the
// Manager call that caused it), then calls Options.Next.
func (b *Bridge) OnEvent(ctx context.Context, e users.AuditEntry) {
	typ := string(e.Type)
	attrs := []attribute.KeyValue{AttrType.String(typ)}
	if e.Reason != "" {
		attrs = append(attrs, AttrReason.String(e.Reason))
	}
	if e.Purpose != "" {
		attrs = append(attrs, AttrPurpose.String(string(e.Purpose)))
	}
	b.events.Add(ctx, 1, metric.WithAttributes(attrs...))

	var outcome string
	switch e.Type {
	case users.EventLoginSucceeded, users.EventMFAVerified:
		outcome = "success"
	case users.EventLoginFailed, users.EventMFAFailed:
		outcome = "failure"
	case users.EventAccountLocked:
		var la []attribute.KeyValue
		if e.Reason != "" {
			la = append(la, AttrReason.String(e.Reason))
		}
		b.locks.Add(ctx, 1, metric.WithAttributes(la...))
	}
	if outcome != "" {
		la := []attribute.KeyValue{AttrType.String(typ), AttrOutcome.String(outcome)}
		if e.Reason != "" {
			la = append(la, AttrReason.String(e.Reason))
		}
		if m := e.Data["method"]; m != "" {
			la = append(la, AttrMethod.String(m))
		}
		b.logins.Add(ctx, 1, metric.WithAttributes(la...))
	}

	spanAttrs := attrs
	if e.UserID != "" {
		spanAttrs = append(spanAttrs, AttrUserID.String(e.UserID))
	}
	if e.SessionID != "" {
		spanAttrs = append(spanAttrs, AttrSession.String(e.SessionID))
	}
	_, span := b.tracer.Start(ctx, "users "+typ,
		trace.WithTimestamp(e.Time), trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(spanAttrs...))
	span.End(trace.WithTimestamp(e.Time))

	if b.next != nil {
		b.next(ctx, e)
	}
}

// RecordError records err when it is (or wraps) a *users.ValidationError:
// one more on MetricValidations with its field and code, and an event
// "users.validation_error" on the span of ctx. An err that names several
// refused fields (users.ValidationErrors, errors.Join) records each of them.
// It reports whether it recorded anything; other errors are left alone.
// Validation refusals are not events of the Manager (nothing was written), so
// the application calls this where it handles errors.
func (b *Bridge) RecordError(ctx context.Context, err error) bool {
	found := false
	var walk func(error)
	walk = func(err error) {
		if ve, ok := err.(*users.ValidationError); ok {
			found = true
			attrs := []attribute.KeyValue{AttrField.String(ve.Field), AttrCode.String(string(ve.Code))}
			b.validations.Add(ctx, 1, metric.WithAttributes(attrs...))
			trace.SpanFromContext(ctx).AddEvent("users.validation_error", trace.WithAttributes(attrs...))
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				walk(next)
			}
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return found
}
