package usersotel_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/userkit/users"
	usersotel "github.com/userkit/users/otel"
	"github.com/userkit/users/storetest"
)

// setup is a Manager whose events go through a Bridge into an in-memory
// metric reader and span recorder.
type setup struct {
	f      *storetest.Fixture
	b      *usersotel.Bridge
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	mu     sync.Mutex
	next   []users.EventType // what Options.Next saw
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	s := &setup{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	b, err := usersotel.New(&usersotel.Options{
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader)),
		TracerProvider: s.tp,
		Next: func(_ context.Context, e users.AuditEntry) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.next = append(s.next, e.Type)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.b = b
	s.f = storetest.NewFixture(t, users.NewMemoryStore(), func(o *users.Options) {
		o.OnEvent = b.OnEvent
		o.MaxFailedLogins = 2
	})
	return s
}

// sums returns the data points of the counter name as attribute sets
// (encoded) to values.
func (s *setup) sums(t *testing.T, name string) map[string]int64 {
	t.Helper()
	if err := s.f.M.FlushEvents(t.Context()); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != usersotel.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, usersotel.ScopeName)
		}
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic {
				t.Fatalf("%s is %T, want a monotonic int64 sum", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				out[dp.Attributes.Encoded(attribute.DefaultEncoder())] += dp.Value
			}
		}
	}
	return out
}

func key(kvs ...attribute.KeyValue) string {
	set := attribute.NewSet(kvs...)
	return set.Encoded(attribute.DefaultEncoder())
}

// TestBridge_Metrics: logins by outcome, a lock, and every event by type.
func TestBridge_Metrics(t *testing.T) {
	s := newSetup(t)
	ctx := t.Context()
	u := s.f.MustCreate(t, users.NewUser{Email: "ada@example.com"})
	s.f.MustLogin(t, "ada@example.com", storetest.Password)
	for range 2 {
		if _, err := s.f.M.Login(ctx, "ada@example.com", "not the password"); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := s.f.M.Login(ctx, "ada@example.com", storetest.Password); !errors.Is(err, users.ErrAccountLocked) {
		t.Fatalf("after 2 failures: %v, want ErrAccountLocked", err)
	}

	logins := s.sums(t, usersotel.MetricLogins)
	success := key(usersotel.AttrType.String(string(users.EventLoginSucceeded)), usersotel.AttrOutcome.String("success"))
	if logins[success] != 1 {
		t.Errorf("logins %v, want 1 at %s", logins, success)
	}
	var failures int64
	for k, v := range logins {
		if k != success {
			failures += v
		}
	}
	if failures < 2 {
		t.Errorf("logins %v, want at least the 2 wrong passwords as failures", logins)
	}
	if locks := s.sums(t, usersotel.MetricLocks); len(locks) != 1 || sumOf(locks) != 1 {
		t.Errorf("locks %v, want one", locks)
	}
	events := s.sums(t, usersotel.MetricEvents)
	if got := events[key(usersotel.AttrType.String(string(users.EventUserCreated)))]; got != 1 {
		t.Errorf("events %v, want one user.created", events)
	}
	page, err := s.f.M.Audit(ctx, users.AuditFilter{UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sumOf(events), int64(len(page.Entries)); got != want {
		t.Errorf("%d events counted, the audit log has %d for the only user", got, want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.next) != len(page.Entries) {
		t.Errorf("Next saw %d events, want %d", len(s.next), len(page.Entries))
	}
}

func sumOf(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// TestBridge_Spans: each event is a span in the trace of the call that
// caused it, at the event's time, with no email or client details.
func TestBridge_Spans(t *testing.T) {
	s := newSetup(t)
	s.f.MustCreate(t, users.NewUser{Email: "ada@example.com"})
	ctx, parent := s.tp.Tracer("test").Start(t.Context(), "POST /login")
	ctx = users.WithClient(ctx, users.Client{IP: "192.0.2.7", UserAgent: "curl/8"})
	sess, err := s.f.M.Login(ctx, "ada@example.com", storetest.Password)
	if err != nil {
		t.Fatal(err)
	}
	parent.End()
	if err := s.f.M.FlushEvents(t.Context()); err != nil {
		t.Fatal(err)
	}
	var login sdktrace.ReadOnlySpan
	for _, sp := range s.spans.Ended() {
		if sp.Name() == "users "+string(users.EventLoginSucceeded) {
			login = sp
		}
		for _, kv := range sp.Attributes() {
			if v := kv.Value.String(); v == "ada@example.com" || v == "192.0.2.7" || v == "curl/8" {
				t.Errorf("span %s has %s=%s: personal data", sp.Name(), kv.Key, v)
			}
		}
	}
	if login == nil {
		t.Fatalf("no login span among %d", len(s.spans.Ended()))
	}
	if login.Parent().SpanID() != parent.SpanContext().SpanID() || login.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("the login span is not a child of the request's span")
	}
	if !login.StartTime().Equal(s.f.Clock.Now()) || !login.EndTime().Equal(s.f.Clock.Now()) {
		t.Errorf("span at %v-%v, want the event's time %v", login.StartTime(), login.EndTime(), s.f.Clock.Now())
	}
	attrs := login.Attributes()
	for _, want := range []attribute.KeyValue{
		usersotel.AttrType.String(string(users.EventLoginSucceeded)),
		usersotel.AttrUserID.String(sess.UserID),
		usersotel.AttrSession.String(sess.ID),
	} {
		if !slices.Contains(attrs, want) {
			t.Errorf("login span attributes %v lack %v", attrs, want)
		}
	}
}

// TestBridge_RecordError counts refused input by field and code, marks the
// request's span, and leaves other errors alone.
func TestBridge_RecordError(t *testing.T) {
	s := newSetup(t)
	ctx, span := s.tp.Tracer("test").Start(t.Context(), "POST /users")
	_, err := s.f.M.Create(ctx, users.NewUser{Email: "not an email", Password: storetest.Password})
	if !s.b.RecordError(ctx, err) {
		t.Fatalf("RecordError(%v) = false, want it recorded", err)
	}
	if s.b.RecordError(ctx, users.ErrNotFound) || s.b.RecordError(ctx, nil) {
		t.Error("RecordError recorded an error that is not a ValidationError")
	}
	span.End()
	got := s.sums(t, usersotel.MetricValidations)
	want := key(usersotel.AttrField.String("email"), usersotel.AttrCode.String(string(users.ValidationMalformed)))
	if len(got) != 1 || got[want] != 1 {
		t.Errorf("validation errors %v, want 1 at %s", got, want)
	}
	ended := s.spans.Ended()
	if len(ended) != 1 || len(ended[0].Events()) != 1 || ended[0].Events()[0].Name != "users.validation_error" {
		t.Fatalf("spans %v, want the request's span with one validation event", ended)
	}
	if ev := ended[0].Events()[0]; !slices.Contains(ev.Attributes, usersotel.AttrCode.String("malformed")) {
		t.Errorf("event attributes %v lack the code", ev.Attributes)
	}

	// Several refused fields in one error: each is counted, and each is an
	// event of the span.
	ctx, span = s.tp.Tracer("test").Start(t.Context(), "POST /users")
	_, err = s.f.M.Create(ctx, users.NewUser{Email: "not an email", Password: "short"})
	if !s.b.RecordError(ctx, err) {
		t.Fatalf("RecordError(%v) = false, want it recorded", err)
	}
	span.End()
	got = s.sums(t, usersotel.MetricValidations)
	short := key(usersotel.AttrField.String("password"), usersotel.AttrCode.String(string(users.ValidationTooShort)))
	if len(got) != 2 || got[want] != 2 || got[short] != 1 {
		t.Errorf("validation errors %v, want 2 at %s and 1 at %s", got, want, short)
	}
	if ended := s.spans.Ended(); len(ended) != 2 || len(ended[1].Events()) != 2 {
		t.Errorf("spans %v, want the second with two validation events", ended)
	}
}

// TestNew_Defaults: nil Options use the global providers (no-ops unless set).
func TestNew_Defaults(t *testing.T) {
	b, err := usersotel.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b.OnEvent(t.Context(), users.AuditEntry{Type: users.EventLoginFailed, Reason: "bad_password"})
	if !b.RecordError(t.Context(), &users.ValidationError{Field: "email", Code: users.ValidationRequired}) {
		t.Error("RecordError = false")
	}
}
