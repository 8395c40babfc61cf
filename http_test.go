package users_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

func TestTokenFromRequest(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header string
		cookie string
		want   string
	}{
		{"Bearer", "Bearer abc", "", "abc"},
		{"SchemeCaseInsensitive", "bEaReR abc", "", "abc"},
		{"ExtraSpaces", "  Bearer   abc  ", "", "abc"},
		{"OtherScheme", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "", ""},
		{"SchemeOnly", "Bearer", "", ""},
		{"SchemeAndSpaces", "Bearer   ", "", ""},
		{"None", "", "", ""},
		{"Cookie", "", "fromcookie", "fromcookie"},
		{"HeaderBeatsCookie", "Bearer abc", "fromcookie", "abc"},
		{"OtherSchemeFallsBackToCookie", "Basic xyz", "fromcookie", "fromcookie"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: "session", Value: tt.cookie})
			}
			if got, want := users.TokenFromRequest(r, "session"), tt.want; got != want {
				t.Errorf("TokenFromRequest = %q, want %q", got, want)
			}
		})
	}
	t.Run("NoCookieName", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: "session", Value: "fromcookie"})
		if got := users.TokenFromRequest(r, ""); got != "" {
			t.Errorf("TokenFromRequest(r, \"\") = %q, want \"\": no cookie was named", got)
		}
	})
}

func TestContext(t *testing.T) {
	if _, ok := users.FromContext(t.Context()); ok {
		t.Error("FromContext(Background) reported a session")
	}
	if _, ok := users.FromContext(users.NewContext(t.Context(), nil)); ok {
		t.Error("FromContext reported a nil session as present")
	}
	s := &users.Session{ID: "s1"}
	got, ok := users.FromContext(users.NewContext(t.Context(), s))
	if !ok || got != s {
		t.Errorf("FromContext = %v, %v; want the session put in", got, ok)
	}
}

// errorEnvelope is the JSON error body.
type errorEnvelope struct {
	Success *bool `json:"success"`
	Error   struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Field   *string `json:"field"`
	} `json:"error"`
}

// decodeError fails unless rec holds a JSON error envelope with status and
// code, and returns it.
func decodeError(tb testing.TB, rec *httptest.ResponseRecorder, status int, code string) errorEnvelope {
	tb.Helper()
	var e errorEnvelope
	if rec.Code != status {
		tb.Errorf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("Content-Type = %q, want application/json", ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		tb.Fatalf("body %q is not JSON: %v", rec.Body, err)
	}
	if e.Success == nil || *e.Success {
		tb.Errorf("success = %v, want false", e.Success)
	}
	if e.Error.Code != code {
		tb.Errorf("code = %q, want %q", e.Error.Code, code)
	}
	if e.Error.Message == "" {
		tb.Error("message is empty")
	}
	return e
}

func TestManager_Middleware(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	f.mustCreate(t, users.NewUser{Email: "ada@example.com"})
	s := f.MustLogin(t, "ada@example.com", storetest.Password)

	var seen *users.Session
	h := f.M.Middleware("session", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = users.FromContext(r.Context())
		fmt.Fprint(w, "ok")
	}))
	serve := func(auth string, cookie string) *httptest.ResponseRecorder {
		seen = nil
		r := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: "session", Value: cookie})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}

	t.Run("OK", func(t *testing.T) {
		rec := serve("Bearer "+s.Token, "")
		if rec.Code != 200 || seen == nil || seen.ID != s.ID || seen.User.Email != "ada@example.com" {
			t.Fatalf("status %d, session %+v; want 200 and the login's session", rec.Code, seen)
		}
		if seen.Token != "" {
			t.Error("the session in the context carries its Token; ValidateToken never sets it")
		}
	})
	t.Run("Cookie", func(t *testing.T) {
		if rec := serve("", s.Token); rec.Code != 200 || seen == nil {
			t.Fatalf("status %d; want 200 with the token in the cookie", rec.Code)
		}
	})
	t.Run("NoToken", func(t *testing.T) {
		rec := serve("", "")
		decodeError(t, rec, 401, users.CodeInvalidToken)
		if got := rec.Header().Get("WWW-Authenticate"); got != "Bearer" {
			t.Errorf("WWW-Authenticate = %q, want %q", got, "Bearer")
		}
		if seen != nil {
			t.Error("next ran without a token")
		}
	})
	t.Run("ErrInvalidToken", func(t *testing.T) {
		rec := serve("Bearer not-a-token", "")
		decodeError(t, rec, 401, users.CodeInvalidToken)
		if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
		}
		if seen != nil {
			t.Error("next ran with an invalid token")
		}
	})
	t.Run("LoggedOut", func(t *testing.T) {
		s2 := f.MustLogin(t, "ada@example.com", storetest.Password)
		if err := f.M.Logout(ctx, s2.Token); err != nil {
			t.Fatal(err)
		}
		decodeError(t, serve("Bearer "+s2.Token, ""), 401, users.CodeInvalidToken)
	})
	t.Run("CanceledContext", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+s.Token)
		c, cancel := context.WithCancel(r.Context())
		cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r.WithContext(c))
		decodeError(t, rec, 503, users.CodeUnavailable)
	})
}

func TestRequireRole(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	admin := f.mustCreate(t, users.NewUser{Email: "admin@example.com", Role: users.RoleAdmin})
	viewer := f.mustCreate(t, users.NewUser{Email: "viewer@example.com", Role: users.RoleViewer})
	adminS := f.MustLogin(t, admin.Email, storetest.Password)
	viewerS := f.MustLogin(t, viewer.Email, storetest.Password)

	ran := false
	h := f.M.Middleware("", users.RequireRole(users.RoleAdmin, users.RoleUser)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true })))
	serve := func(h http.Handler, token string) *httptest.ResponseRecorder {
		ran = false
		r := httptest.NewRequest("GET", "/", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}

	t.Run("OK", func(t *testing.T) {
		if rec := serve(h, adminS.Token); rec.Code != 200 || !ran {
			t.Fatalf("status %d, ran %v; want 200 for an admin", rec.Code, ran)
		}
	})
	t.Run("Forbidden", func(t *testing.T) {
		decodeError(t, serve(h, viewerS.Token), 403, users.CodeForbidden)
		if ran {
			t.Error("next ran for a viewer")
		}
	})
	t.Run("RoleChangeAppliesAtOnce", func(t *testing.T) {
		if _, err := f.M.UpdateRole(ctx, viewer.ID, users.RoleUser); err != nil {
			t.Fatal(err)
		}
		if rec := serve(h, viewerS.Token); rec.Code != 200 {
			t.Errorf("status %d after promoting the viewer, want 200", rec.Code)
		}
	})
	t.Run("NoSession", func(t *testing.T) {
		bare := users.RequireRole(users.RoleAdmin)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true }))
		decodeError(t, serve(bare, adminS.Token), 401, users.CodeInvalidToken)
		if ran {
			t.Error("next ran without Middleware having put a session in the context")
		}
	})
}

func TestHTTPError(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		code   string
		field  string
	}{
		{nil, 200, "", ""},
		{&users.ValidationError{Field: "email", Reason: "is required"}, 400, "invalid_request", "email"},
		{fmt.Errorf("wrapped: %w", &users.ValidationError{Field: "limit", Reason: "x"}), 400, "invalid_request", "limit"},
		{users.ErrInvalidInput, 400, "invalid_request", ""},
		{users.ErrInvalidCredentials, 401, "invalid_credentials", ""},
		{users.ErrInvalidToken, 401, "invalid_token", ""},
		{users.ErrAccountDisabled, 403, "account_disabled", ""},
		{users.ErrEmailNotVerified, 403, "email_not_verified", ""},
		{fmt.Errorf("users: begin TOTP: %w", users.ErrReauthRequired), 403, "reauth_required", ""},
		{users.ErrNotFound, 404, "not_found", ""},
		{fmt.Errorf("users: get: %w", users.ErrNotFound), 404, "not_found", ""},
		{users.ErrUnknownEmail, 404, "not_found", ""},
		{users.ErrDuplicateEmail, 409, "duplicate_email", ""},
		{users.ErrDuplicateUsername, 409, "duplicate_username", ""},
		{users.ErrConflict, 409, "conflict", ""},
		{users.ErrAccountLocked, 429, "account_locked", ""},
		{context.Canceled, 503, "unavailable", ""},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 503, "unavailable", ""},
		{errors.New("disk on fire at /var/lib/secret"), 500, "internal_error", ""},
	} {
		status, code, field := users.HTTPError(tt.err)
		if status != tt.status || code != tt.code || field != tt.field {
			t.Errorf("HTTPError(%v) = %d, %q, %q; want %d, %q, %q", tt.err, status, code, field, tt.status, tt.code, tt.field)
		}
	}
}

func TestWriteError(t *testing.T) {
	t.Run("ValidationError", func(t *testing.T) {
		rec := httptest.NewRecorder()
		_, err := users.NormalizeEmail("ada.example.com")
		users.WriteError(rec, fmt.Errorf("wrapped: %w", err))
		e := decodeError(t, rec, 400, "invalid_request")
		if e.Error.Field == nil || *e.Error.Field != "email" {
			t.Errorf("field = %v, want email", e.Error.Field)
		}
		if got, want := e.Error.Message, "Invalid email: must contain exactly one @"; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
		var body struct {
			Error struct {
				Reason string `json:"reason"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if got, want := body.Error.Reason, string(users.ValidationMalformed); got != want {
			t.Errorf("reason = %q, want %q: clients translate by it", got, want)
		}
	})
	t.Run("EveryField", func(t *testing.T) {
		// Every refused field in "fields", in order; the top-level keys
		// stay the first field's, for clients that read only those.
		rec := httptest.NewRecorder()
		f := newFixture(t, nil)
		_, err := f.M.Create(t.Context(), users.NewUser{Email: "ada", Password: "short", LastName: strings.Repeat("n", 101)})
		users.WriteError(rec, err)
		decodeError(t, rec, 400, "invalid_request")
		want := `{"success":false,"error":{"code":"invalid_request","message":"Invalid email: must contain exactly one @","field":"email","reason":"malformed","fields":[` +
			`{"field":"email","reason":"malformed","message":"Invalid email: must contain exactly one @"},` +
			`{"field":"password","reason":"too_short","message":"Invalid password: must be at least 8 characters"},` +
			`{"field":"last_name","reason":"too_long","message":"Invalid last_name: must be at most 100 characters"}]}}` + "\n"
		if got := rec.Body.String(); got != want {
			t.Errorf("body = %s, want %s", got, want)
		}

		rec = httptest.NewRecorder()
		users.WriteError(rec, &users.ValidationError{Field: "email", Code: users.ValidationRequired, Reason: "is required"})
		want = `{"success":false,"error":{"code":"invalid_request","message":"Invalid email: is required","field":"email","reason":"required","fields":[` +
			`{"field":"email","reason":"required","message":"Invalid email: is required"}]}}` + "\n"
		if got := rec.Body.String(); got != want {
			t.Errorf("one field: body = %s, want %s", got, want)
		}
	})
	t.Run("NoFieldKey", func(t *testing.T) {
		// The document's 404 and 409 bodies have no "field" key at all.
		rec := httptest.NewRecorder()
		users.WriteError(rec, users.ErrDuplicateEmail)
		decodeError(t, rec, 409, "duplicate_email")
		if got, want := rec.Body.String(), `{"success":false,"error":{"code":"duplicate_email","message":"A user with this email already exists"}}`+"\n"; got != want {
			t.Errorf("body = %s, want %s", got, want)
		}
	})
	t.Run("InternalErrorHidesText", func(t *testing.T) {
		rec := httptest.NewRecorder()
		users.WriteError(rec, errors.New("open /var/lib/secret.db: permission denied"))
		decodeError(t, rec, 500, "internal_error")
		if strings.Contains(rec.Body.String(), "secret") {
			t.Errorf("body %s carries the error's text", rec.Body)
		}
	})
	t.Run("UnauthorizedChallenge", func(t *testing.T) {
		rec := httptest.NewRecorder()
		users.WriteError(rec, users.ErrInvalidCredentials)
		decodeError(t, rec, 401, "invalid_credentials")
		if rec.Header().Get("WWW-Authenticate") == "" {
			t.Error("a 401 without WWW-Authenticate")
		}
	})
}
