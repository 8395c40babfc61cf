package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

const (
	adminEmail    = "admin@example.com"
	adminPassword = "admin password for tests"
)

// response is any answer of the API.
type response struct {
	Status int
	Header http.Header
	Raw    string

	Success    *bool           `json:"success"`
	Data       json.RawMessage `json:"data"`
	Pagination *pagination     `json:"pagination"`
	Message    string          `json:"message"`
	Error      *struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Field   *string `json:"field"`
		Reason  string  `json:"reason"`
		Fields  []struct {
			Field, Reason, Message string
		} `json:"fields"`
	} `json:"error"`
}

func (r *response) user(tb testing.TB) apiUser {
	tb.Helper()
	var u apiUser
	if err := json.Unmarshal(r.Data, &u); err != nil {
		tb.Fatalf("data is not a user: %v; body %s", err, r.Raw)
	}
	return u
}

func (r *response) users(tb testing.TB) []apiUser {
	tb.Helper()
	var us []apiUser
	if err := json.Unmarshal(r.Data, &us); err != nil || us == nil {
		tb.Fatalf("data is not a list of users: %v; body %s", err, r.Raw)
	}
	return us
}

func (r *response) session(tb testing.TB) apiSession {
	tb.Helper()
	var s apiSession
	if err := json.Unmarshal(r.Data, &s); err != nil || s.Token == "" {
		tb.Fatalf("data is not a session: %v; body %s", err, r.Raw)
	}
	return s
}

// env is a running API with a captured mailbox.
type env struct {
	tb     testing.TB
	srv    *Server
	ts     *httptest.Server
	m      *users.Manager
	mu     sync.Mutex
	mailed []Mail
	clock  *storetest.Clock // the Manager's
}

// newEnv starts the API over store with the first admin created; edit, if
// given, may change the Server first. The Manager is a storetest.Fixture's:
// the lowest bcrypt cost, and the fake clock in env.clock.
func newEnv(tb testing.TB, store users.Store, edit ...func(*Server)) *env {
	tb.Helper()
	return newEnvOpts(tb, store, users.Options{}, edit...)
}

// newEnvOpts is newEnv with the Manager's options; the kit's lowest bcrypt
// cost and fake clock replace the ones opts has.
func newEnvOpts(tb testing.TB, store users.Store, opts users.Options, edit ...func(*Server)) *env {
	tb.Helper()
	f := storetest.NewFixture(tb, store, func(o *users.Options) {
		kit := *o
		*o = opts
		o.BcryptCost, o.InsecureLowBcryptCostForTests, o.Now = kit.BcryptCost, kit.InsecureLowBcryptCostForTests, kit.Now
	})
	m := f.M
	if u, err := ensureAdmin(tb.Context(), m, adminEmail, adminPassword); err != nil || u == nil {
		tb.Fatalf("ensureAdmin on an empty store = %v, %v; want a new admin", u, err)
	}
	e := &env{tb: tb, m: m, clock: f.Clock}
	e.srv = &Server{
		Users:  m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Mail: func(_ context.Context, ml Mail) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.mailed = append(e.mailed, ml)
		},
	}
	for _, f := range edit {
		f(e.srv)
	}
	e.ts = httptest.NewServer(e.srv.Handler())
	tb.Cleanup(e.ts.Close)
	return e
}

// mail waits for the background work and returns what was mailed since the
// last call.
func (e *env) mail() []Mail {
	e.srv.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.mailed
	e.mailed = nil
	return out
}

// mustMail returns the token of the one mail that was sent, which must be of
// kind to to.
func (e *env) mustMail(kind, to string) string {
	e.tb.Helper()
	ms := e.mail()
	if len(ms) != 1 || ms[0].Kind != kind || ms[0].To != to || ms[0].Token == "" {
		e.tb.Fatalf("mailed %+v; want one %s mail to %s", ms, kind, to)
	}
	return ms[0].Token
}

// call sends a request with a raw JSON body (if not empty) and the token (if
// not empty) and checks the status.
func (e *env) call(method, path, token, body string, status int) *response {
	e.tb.Helper()
	return e.send(e.request(method, path, token, body), status)
}

// request makes a request with a raw JSON body (if not empty) and the token
// (if not empty).
func (e *env) request(method, path, token, body string) *http.Request {
	e.tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func (e *env) send(req *http.Request, status int) *response {
	e.tb.Helper()
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.tb.Fatal(err)
	}
	r := &response{Status: res.StatusCode, Header: res.Header, Raw: string(b)}
	if res.StatusCode != status {
		e.tb.Fatalf("%s %s: status %d, want %d; body %s", req.Method, req.URL.Path, res.StatusCode, status, b)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		e.tb.Errorf("%s %s: Content-Type %q, want JSON", req.Method, req.URL.Path, ct)
	}
	if err := json.Unmarshal(b, r); err != nil {
		e.tb.Fatalf("%s %s: body is not JSON: %v; %s", req.Method, req.URL.Path, err, b)
	}
	if r.Success == nil || *r.Success != (status < 400) {
		e.tb.Errorf("%s %s: success = %v with status %d", req.Method, req.URL.Path, r.Success, status)
	}
	if strings.Contains(r.Raw, "goroutine") || strings.Contains(r.Raw, "users: ") {
		e.tb.Errorf("%s %s: body leaks internals: %s", req.Method, req.URL.Path, b)
	}
	return r
}

// fail sends a request that must fail with status, code and (if not empty) field.
func (e *env) fail(method, path, token, body string, status int, code, field string) *response {
	e.tb.Helper()
	r := e.call(method, path, token, body, status)
	switch {
	case r.Error == nil:
		e.tb.Fatalf("%s %s: no error object: %s", method, path, r.Raw)
	case r.Error.Code != code:
		e.tb.Errorf("%s %s: code %q, want %q; body %s", method, path, r.Error.Code, code, r.Raw)
	case r.Error.Message == "":
		e.tb.Errorf("%s %s: empty message", method, path)
	case field == "" && r.Error.Field != nil:
		e.tb.Errorf("%s %s: field %q, want no field key; body %s", method, path, *r.Error.Field, r.Raw)
	case field != "" && (r.Error.Field == nil || *r.Error.Field != field):
		e.tb.Errorf("%s %s: field %v, want %q; body %s", method, path, r.Error.Field, field, r.Raw)
	case field != "" && r.Error.Reason == "":
		e.tb.Errorf("%s %s: a refused field without a reason code; body %s", method, path, r.Raw)
	}
	if r.Data != nil {
		e.tb.Errorf("%s %s: an error with data: %s", method, path, r.Raw)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		e.tb.Errorf("%s %s: 401 without a Bearer challenge", method, path)
	}
	return r
}

func (e *env) login(identifier, password string) string {
	e.tb.Helper()
	field := "email"
	if !strings.Contains(identifier, "@") {
		field = "username"
	}
	r := e.call("POST", "/v1/auth/login", "", fmt.Sprintf(`{%q:%q,"password":%q}`, field, identifier, password), 200)
	return r.session(e.tb).Token
}

func (e *env) create(admin, body string) apiUser {
	e.tb.Helper()
	return e.call("POST", "/v1/users", admin, body, 201).user(e.tb)
}

func TestAPI(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(t *testing.T) users.Store
	}{
		{"Memory", func(t *testing.T) users.Store { return users.NewMemoryStore() }},
		{"Bolt", func(t *testing.T) users.Store {
			s, err := users.OpenBoltStore(filepath.Join(t.TempDir(), "users.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { testAPI(t, tt.store(t)) })
	}
}

func testAPI(t *testing.T, store users.Store) {
	e := newEnv(t, store)
	admin := e.login(adminEmail, adminPassword)

	var jane apiUser
	t.Run("Create", func(t *testing.T) {
		e.tb = t
		// The document's request, word for word.
		r := e.call("POST", "/v1/users", admin, `{
			"name": "Jane Smith",
			"email": "jane@example.com",
			"role": "user",
			"password": "secure_password_123"
		}`, 201)
		jane = r.user(t)
		if r.Message != "User created successfully" {
			t.Errorf("message %q", r.Message)
		}
		if jane.ID == "" || jane.Name != "Jane Smith" || jane.Email != "jane@example.com" ||
			jane.Role != "user" || jane.Status != "active" || jane.CreatedAt != jane.UpdatedAt {
			t.Errorf("created %+v", jane)
		}
		if _, err := time.Parse(time.RFC3339, jane.CreatedAt); err != nil || !strings.HasSuffix(jane.CreatedAt, "Z") {
			t.Errorf("created_at %q is not ISO 8601 UTC: %v", jane.CreatedAt, err)
		}
		if got, want := r.Header.Get("Location"), "/v1/users/"+jane.ID; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if strings.Contains(r.Raw, "password") || strings.Contains(r.Raw, "avatar") {
			t.Errorf("body has a password or an empty avatar: %s", r.Raw)
		}

		u := e.create(admin, `{"first_name":"Mary Ann","last_name":"Jones","email":"MARY@example.com","username":"mary","avatar":"https://example.com/a/mary.jpg","password":"correct horse battery staple"}`)
		if u.Name != "Mary Ann Jones" || u.Email != "mary@example.com" || u.Username != "mary" || u.Avatar != "https://example.com/a/mary.jpg" || u.Role != "user" {
			t.Errorf("created %+v", u)
		}
	})

	t.Run("CreateErrors", func(t *testing.T) {
		e.tb = t
		const pw = `"password":"correct horse battery staple"`
		e.fail("POST", "/v1/users", admin, `{"email":"not-an-email",`+pw+`}`, 400, "invalid_request", "email")
		r := e.fail("POST", "/v1/users", admin, `{"email":"jane@example.com",`+pw+`}`, 409, "duplicate_email", "")
		if r.Error.Message != "A user with this email already exists" {
			t.Errorf("message %q", r.Error.Message)
		}
		e.fail("POST", "/v1/users", admin, `{"email":"mary2@example.com","username":"MARY",`+pw+`}`, 409, "duplicate_username", "")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com","password":"short"}`, 400, "invalid_request", "password")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com","password":"password123"}`, 400, "invalid_request", "password")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com"}`, 400, "invalid_request", "password")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com","role":"root",`+pw+`}`, 400, "invalid_request", "role")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com","status":"invited",`+pw+`}`, 400, "invalid_request", "status")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com","avatar":"javascript:alert(1)",`+pw+`}`, 400, "invalid_request", "avatar")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com","name":"`+strings.Repeat("x", 101)+`",`+pw+`}`, 400, "invalid_request", "name")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com","name":"A B","first_name":"A",`+pw+`}`, 400, "invalid_request", "name")
		// Every refused field at once, in the library's order, under this
		// API's names (avatar; name once for its two halves); the
		// top-level keys are the first field's.
		long := strings.Repeat("x", 101)
		r = e.fail("POST", "/v1/users", admin, `{"email":"not-an-email","password":"short","avatar":"javascript:alert(1)","name":"`+long+" "+long+`"}`, 400, "invalid_request", "email")
		var got []string
		for _, f := range r.Error.Fields {
			got = append(got, f.Field+" "+f.Reason+" "+f.Message)
		}
		want := []string{
			"email malformed Invalid email: must contain exactly one @",
			"password too_short Invalid password: must be at least 8 characters",
			"name too_long Invalid name: must be at most 100 characters",
			"avatar malformed Invalid avatar: must be an absolute http or https URL",
		}
		if !slices.Equal(got, want) || r.Error.Reason != "malformed" || r.Error.Message != want[0][len("email malformed "):] {
			t.Errorf("fields %q, reason %q, message %q; want fields %q and the first at the top", got, r.Error.Reason, r.Error.Message, want)
		}
		r = e.fail("PATCH", "/v1/users/"+jane.ID, admin, `{"username":"x","role":"root","avatar":"ftp://x"}`, 400, "invalid_request", "username")
		if len(r.Error.Fields) != 3 || r.Error.Fields[1].Field != "role" || r.Error.Fields[2].Field != "avatar" {
			t.Errorf("PATCH with three bad fields: %s", r.Raw)
		}
		// Bad bodies: wrong types, unknown fields, not JSON, not one object.
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com","role":5,`+pw+`}`, 400, "invalid_request", "role")
		e.fail("POST", "/v1/users", admin, `{"email":["new@example.com"],`+pw+`}`, 400, "invalid_request", "email")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com","is_admin":true,`+pw+`}`, 400, "invalid_request", "is_admin")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com",`, 400, "invalid_request", "body")
		e.fail("POST", "/v1/users", admin, `{"email":"new@example.com",`+pw+`}{}`, 400, "invalid_request", "body")
		e.fail("POST", "/v1/users", admin, `[]`, 400, "invalid_request", "body")
		e.fail("POST", "/v1/users", admin, `"x"`, 400, "invalid_request", "body")
		e.fail("POST", "/v1/users", admin, ` `, 400, "invalid_request", "body")

		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/users", strings.NewReader(`{"email":"new@example.com",`+pw+`}`))
		req.Header.Set("Authorization", "Bearer "+admin)
		e.send(req, 415) // no Content-Type
		req, _ = http.NewRequest("POST", e.ts.URL+"/v1/users", strings.NewReader(`email=new@example.com`))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := e.send(req, 415); r.Error == nil || r.Error.Code != "unsupported_media_type" {
			t.Errorf("form body: %s", r.Raw)
		}
		big := `{"email":"new@example.com","name":"` + strings.Repeat("x", 2<<20) + `"}`
		if r := e.call("POST", "/v1/users", admin, big, 413); r.Error == nil || r.Error.Code != "request_too_large" {
			t.Errorf("big body: %s", r.Raw)
		}
		// Nothing above was stored.
		if r := e.call("GET", "/v1/users?search=new@", admin, "", 200); len(r.users(t)) != 0 {
			t.Errorf("a refused create stored a user: %s", r.Raw)
		}
	})

	// More users, for paging and roles: the admin, jane, mary and these.
	viewer := e.create(admin, `{"name":"Val Viewer","email":"val@example.com","role":"viewer","password":"correct horse battery staple"}`)
	var others []apiUser
	for _, n := range []string{"bob", "cy", "dee", "eve"} {
		others = append(others, e.create(admin, `{"name":"`+n+`","email":"`+n+`@example.com","password":"correct horse battery staple"}`))
	}
	const total = 8

	t.Run("List", func(t *testing.T) {
		e.tb = t
		r := e.call("GET", "/v1/users", admin, "", 200)
		all := r.users(t)
		if want := (pagination{Page: 1, Limit: 20, Total: total, Pages: 1}); r.Pagination == nil || *r.Pagination != want {
			t.Errorf("pagination %+v, want %+v", r.Pagination, want)
		}
		if len(all) != total || all[0].Email != adminEmail || all[1].ID != jane.ID {
			t.Errorf("listed %d users starting %v, want %d in creation order", len(all), all[0], total)
		}
		if strings.Contains(r.Raw, `"message"`) {
			t.Errorf("a list with a message: %s", r.Raw)
		}

		// Pages of 3: 3, 3, 2, then an empty page past the end.
		var seen []string
		for page := 1; page <= 4; page++ {
			r := e.call("GET", fmt.Sprintf("/v1/users?page=%d&limit=3", page), admin, "", 200)
			want := pagination{Page: page, Limit: 3, Total: total, Pages: 3}
			if *r.Pagination != want {
				t.Errorf("page %d: pagination %+v, want %+v", page, *r.Pagination, want)
			}
			got := r.users(t)
			if wantLen := []int{3, 3, 2, 0}[page-1]; len(got) != wantLen {
				t.Errorf("page %d: %d users, want %d", page, len(got), wantLen)
			}
			for _, u := range got {
				seen = append(seen, u.ID)
			}
		}
		for i := range all {
			if i >= len(seen) || seen[i] != all[i].ID {
				t.Fatalf("paging gave %v, want the order of the full list", seen)
			}
		}
		if r := e.call("GET", "/v1/users?page=99", admin, "", 200); !strings.Contains(r.Raw, `"data":[]`) {
			t.Errorf("a page past the end should have data [], got %s", r.Raw)
		}

		// The document's example request: role filter.
		r = e.call("GET", "/v1/users?page=1&limit=20&role=admin", admin, "", 200)
		if got := r.users(t); len(got) != 1 || got[0].Email != adminEmail || r.Pagination.Total != 1 || r.Pagination.Pages != 1 {
			t.Errorf("role=admin: %s", r.Raw)
		}
		if got := e.call("GET", "/v1/users?role=viewer", admin, "", 200).users(t); len(got) != 1 || got[0].ID != viewer.ID {
			t.Errorf("role=viewer: %v", got)
		}
		if got := e.call("GET", "/v1/users?status=active", admin, "", 200).users(t); len(got) != total {
			t.Errorf("status=active: %d users, want %d", len(got), total)
		}
		if got := e.call("GET", "/v1/users?status=suspended", admin, "", 200).users(t); len(got) != 0 {
			t.Errorf("status=suspended: %v", got)
		}
		if got := e.call("GET", "/v1/users?search=SMITH", admin, "", 200).users(t); len(got) != 1 || got[0].ID != jane.ID {
			t.Errorf("search=SMITH (a name): %v", got)
		}
		if got := e.call("GET", "/v1/users?search=bob%40example", admin, "", 200).users(t); len(got) != 1 || got[0].Email != "bob@example.com" {
			t.Errorf("search=bob@example (an email): %v", got)
		}
		r = e.call("GET", "/v1/users?role=user&limit=4&page=2", admin, "", 200) // jane, mary, bob, cy | dee, eve
		if p := r.Pagination; p.Total != 6 || p.Pages != 2 || len(r.users(t)) != 2 || r.users(t)[1].Email != "eve@example.com" {
			t.Errorf("role=user&limit=4&page=2: %s", r.Raw)
		}
		r = e.call("GET", "/v1/users?role=user&search=y&limit=1", admin, "", 200) // mary, cy
		if p := r.Pagination; p.Total != 2 || p.Pages != 2 || len(r.users(t)) != 1 || r.users(t)[0].Email != "mary@example.com" {
			t.Errorf("role=user&search=y&limit=1: %s", r.Raw)
		}

		for q, field := range map[string]string{
			"limit=101": "limit", "limit=0": "limit", "limit=-1": "limit", "limit=ten": "limit",
			"page=0": "page", "page=-3": "page", "page=1.5": "page", "page=99999999999999999999": "page",
			fmt.Sprint("page=", int64(math.MaxInt32)+1): "page",
			"role=root": "role", "status=gone": "status", "search=" + strings.Repeat("x", 101): "search",
		} {
			e.fail("GET", "/v1/users?"+q, admin, "", 400, "invalid_request", field)
		}
	})

	janeToken := e.login("jane@example.com", "secure_password_123")
	viewerToken := e.login("val@example.com", "correct horse battery staple")

	t.Run("Get", func(t *testing.T) {
		e.tb = t
		if got := e.call("GET", "/v1/users/"+jane.ID, admin, "", 200).user(t); got.ID != jane.ID || got.Email != jane.Email || got.Name != jane.Name {
			t.Errorf("got %+v, want %+v", got, jane)
		}
		if got := e.call("GET", "/v1/users/"+jane.ID, janeToken, "", 200).user(t); got.ID != jane.ID || got.LastLoginAt == "" {
			t.Errorf("jane reading herself: %+v", got)
		}
		e.call("GET", "/v1/users/"+viewer.ID, viewerToken, "", 200)
		r := e.fail("GET", "/v1/users/01ARZ3NDEKTSV4RRFFQ69G5FAV", admin, "", 404, "not_found", "")
		if r.Error.Message != "User not found" {
			t.Errorf("message %q", r.Error.Message)
		}
		e.fail("GET", "/v1/users/"+others[0].ID, janeToken, "", 403, "forbidden", "")
		e.fail("GET", "/v1/users/"+others[0].ID, viewerToken, "", 403, "forbidden", "")
		e.fail("GET", "/v1/users/01ARZ3NDEKTSV4RRFFQ69G5FAV", janeToken, "", 403, "forbidden", "") // no probing
	})

	t.Run("Unauthorized", func(t *testing.T) {
		e.tb = t
		for _, rt := range []string{"GET /v1/users", "POST /v1/users", "GET /v1/users/" + jane.ID,
			"PATCH /v1/users/" + jane.ID, "DELETE /v1/users/" + jane.ID, "PUT /v1/users/" + jane.ID + "/role",
			"PUT /v1/users/" + jane.ID + "/password", "GET /v1/me", "PUT /v1/me/password", "POST /v1/me/email-verification", "POST /v1/auth/logout", "POST /v1/users/invite"} {
			method, path, _ := strings.Cut(rt, " ")
			e.fail(method, path, "", "", 401, "invalid_token", "")
			e.fail(method, path, "not-a-token", "", 401, "invalid_token", "")
			e.fail(method, path, strings.Repeat("A", 43), "", 401, "invalid_token", "")
		}
	})

	t.Run("Forbidden", func(t *testing.T) {
		e.tb = t
		for _, tok := range []string{janeToken, viewerToken} {
			e.fail("GET", "/v1/users", tok, "", 403, "forbidden", "")
			e.fail("POST", "/v1/users", tok, `{"email":"x@example.com","password":"correct horse battery staple"}`, 403, "forbidden", "")
			e.fail("POST", "/v1/users/invite", tok, `{"email":"x@example.com"}`, 403, "forbidden", "")
			e.fail("DELETE", "/v1/users/"+others[0].ID, tok, "", 403, "forbidden", "")
			e.fail("PUT", "/v1/users/"+others[0].ID+"/role", tok, `{"role":"admin"}`, 403, "forbidden", "")
			e.fail("PUT", "/v1/users/"+others[0].ID+"/password", tok, `{"new_password":"taken over by me","confirm_password":"taken over by me"}`, 403, "forbidden", "")
			e.fail("PATCH", "/v1/users/"+others[0].ID, tok, `{"name":"Hacked"}`, 403, "forbidden", "")
		}
		e.fail("PUT", "/v1/users/"+jane.ID+"/role", janeToken, `{"role":"admin"}`, 403, "forbidden", "")
		if got := e.call("GET", "/v1/users/"+others[0].ID, admin, "", 200).user(t); got.Name != "bob" || got.Role != "user" {
			t.Errorf("a forbidden request changed bob: %+v", got)
		}
	})

	t.Run("Patch", func(t *testing.T) {
		e.tb = t
		bob := others[0]
		// The document's request: name and role.
		r := e.call("PATCH", "/v1/users/"+bob.ID, admin, `{"name": "John Smith", "role": "admin"}`, 200)
		got := r.user(t)
		if got.Name != "John Smith" || got.Role != "admin" || got.Email != bob.Email || got.CreatedAt != bob.CreatedAt || r.Message != "User updated successfully" {
			t.Errorf("patched %+v (%s)", got, r.Message)
		}
		e.call("PATCH", "/v1/users/"+bob.ID, admin, `{"role":"user","status":"inactive","avatar":"https://example.com/b.png"}`, 200)
		e.fail("POST", "/v1/auth/login", "", `{"email":"bob@example.com","password":"correct horse battery staple"}`, 403, "account_disabled", "")
		e.call("PATCH", "/v1/users/"+bob.ID, admin, `{"status":"active","first_name":"Robert"}`, 200)
		if got := e.call("GET", "/v1/users/"+bob.ID, admin, "", 200).user(t); got.Name != "Robert Smith" || got.Status != "active" || got.Avatar != "https://example.com/b.png" {
			t.Errorf("after patches: %+v", got)
		}

		// Users update themselves, but not their role or status.
		if got := e.call("PATCH", "/v1/users/"+jane.ID, janeToken, `{"name":"Janet Smith","username":"janet"}`, 200).user(t); got.Name != "Janet Smith" || got.Username != "janet" {
			t.Errorf("self patch: %+v", got)
		}
		e.fail("PATCH", "/v1/users/"+jane.ID, janeToken, `{"role":"admin"}`, 403, "forbidden", "")
		e.fail("PATCH", "/v1/users/"+jane.ID, janeToken, `{"status":"active"}`, 403, "forbidden", "")
		e.fail("PATCH", "/v1/users/"+viewer.ID, viewerToken, `{"name":"Vee"}`, 403, "forbidden", "")
		// Admins cannot lock themselves out.
		adminID := e.call("GET", "/v1/me", admin, "", 200).user(t).ID
		e.fail("PATCH", "/v1/users/"+adminID, admin, `{"role":"viewer"}`, 403, "forbidden", "")
		e.fail("PATCH", "/v1/users/"+adminID, admin, `{"status":"suspended"}`, 403, "forbidden", "")
		e.call("PATCH", "/v1/users/"+adminID, admin, `{"name":"Ada Admin","role":"admin"}`, 200)

		e.fail("PATCH", "/v1/users/01ARZ3NDEKTSV4RRFFQ69G5FAV", admin, `{"name":"x"}`, 404, "not_found", "")
		e.fail("PATCH", "/v1/users/"+bob.ID, admin, `{"email":"jane@example.com"}`, 409, "duplicate_email", "")
		e.fail("PATCH", "/v1/users/"+bob.ID, admin, `{"username":"janet"}`, 409, "duplicate_username", "")
		e.fail("PATCH", "/v1/users/"+bob.ID, admin, `{"email":"bob at example"}`, 400, "invalid_request", "email")
		e.fail("PATCH", "/v1/users/"+bob.ID, admin, `{"role":"root"}`, 400, "invalid_request", "role")
		e.fail("PATCH", "/v1/users/"+bob.ID, admin, `{"status":"invited"}`, 400, "invalid_request", "status")
		e.fail("PATCH", "/v1/users/"+bob.ID, admin, `{"name":7}`, 400, "invalid_request", "name")
		e.fail("PATCH", "/v1/users/"+bob.ID, admin, `{"password":"new password here"}`, 400, "invalid_request", "password")
		e.fail("PATCH", "/v1/users/"+bob.ID, admin, `{"first_name":"`+strings.Repeat("x", 101)+`"}`, 400, "invalid_request", "first_name")

		// Suspending a user ends their sessions.
		eve := others[3]
		eveToken := e.login(eve.Email, "correct horse battery staple")
		e.call("GET", "/v1/me", eveToken, "", 200)
		e.call("PATCH", "/v1/users/"+eve.ID, admin, `{"status":"suspended"}`, 200)
		e.fail("GET", "/v1/me", eveToken, "", 401, "invalid_token", "")
	})

	t.Run("Role", func(t *testing.T) {
		e.tb = t
		r := e.call("PUT", "/v1/users/"+jane.ID+"/role", admin, `{"role":"viewer"}`, 200)
		if got := r.user(t); got.Role != "viewer" {
			t.Errorf("role %q", got.Role)
		}
		// At once: jane's current token is a viewer's now.
		e.fail("PATCH", "/v1/users/"+jane.ID, janeToken, `{"name":"Jane"}`, 403, "forbidden", "")
		e.call("PUT", "/v1/users/"+jane.ID+"/role", admin, `{"role":"user"}`, 200)
		e.call("PATCH", "/v1/users/"+jane.ID, janeToken, `{"name":"Jane Smith"}`, 200)

		e.fail("PUT", "/v1/users/"+jane.ID+"/role", admin, `{"role":"root"}`, 400, "invalid_request", "role")
		e.fail("PUT", "/v1/users/"+jane.ID+"/role", admin, `{}`, 400, "invalid_request", "role")
		e.fail("PUT", "/v1/users/"+jane.ID+"/role", admin, `{"role":"admin","name":"x"}`, 400, "invalid_request", "name")
		e.fail("PUT", "/v1/users/01ARZ3NDEKTSV4RRFFQ69G5FAV/role", admin, `{"role":"user"}`, 404, "not_found", "")
		adminID := e.call("GET", "/v1/me", admin, "", 200).user(t).ID
		e.fail("PUT", "/v1/users/"+adminID+"/role", admin, `{"role":"user"}`, 403, "forbidden", "")
	})

	t.Run("Login", func(t *testing.T) {
		e.tb = t
		r := e.call("POST", "/v1/auth/login", "", `{"username":"JANET","password":"secure_password_123"}`, 200)
		s := r.session(t)
		if s.TokenType != "Bearer" || s.User.Email != "jane@example.com" || s.ExpiresAt == "" {
			t.Errorf("login by username: %+v", s)
		}
		e.fail("POST", "/v1/auth/login", "", `{"email":"jane@example.com","password":"wrong password!"}`, 401, "invalid_credentials", "")
		e.fail("POST", "/v1/auth/login", "", `{"email":"nobody@example.com","password":"wrong password!"}`, 401, "invalid_credentials", "")
		e.fail("POST", "/v1/auth/login", "", `{"email":"jane@example.com"}`, 400, "invalid_request", "password")
		e.fail("POST", "/v1/auth/login", "", `{"password":"x"}`, 400, "invalid_request", "email")
		e.fail("POST", "/v1/auth/login", "", `{"email":"jane@example.com","username":"janet","password":"x"}`, 400, "invalid_request", "username")
		e.fail("POST", "/v1/auth/login", "", `{"email":"jane@example.com","password":123}`, 400, "invalid_request", "password")
	})

	t.Run("Me", func(t *testing.T) {
		e.tb = t
		if got := e.call("GET", "/v1/me", janeToken, "", 200).user(t); got.ID != jane.ID {
			t.Errorf("me = %+v", got)
		}
		if got := e.call("GET", "/v1/me", viewerToken, "", 200).user(t); got.ID != viewer.ID || got.Role != "viewer" {
			t.Errorf("me = %+v", got)
		}
	})

	t.Run("Password", func(t *testing.T) {
		e.tb = t
		const path = "/v1/me/password"
		e.fail("PUT", path, janeToken, `{"current_password":"wrong password!","new_password":"a brand new password","confirm_password":"a brand new password"}`, 401, "invalid_credentials", "")
		e.fail("PUT", path, janeToken, `{"current_password":"secure_password_123","new_password":"short","confirm_password":"short"}`, 400, "invalid_request", "new_password")
		e.fail("PUT", path, janeToken, `{"current_password":"secure_password_123"}`, 400, "invalid_request", "new_password")
		e.fail("PUT", path, janeToken, `{"new_password":"a brand new password"}`, 400, "invalid_request", "current_password")
		// The confirmation is checked by the server, before the library sees anything.
		e.fail("PUT", path, janeToken, `{"current_password":"secure_password_123","new_password":"a brand new password"}`, 400, "invalid_request", "confirm_password")
		e.fail("PUT", path, janeToken, `{"current_password":"secure_password_123","new_password":"a brand new password","confirm_password":"a brand new passw0rd"}`, 400, "invalid_request", "confirm_password")
		e.fail("PUT", path, janeToken, `{"current_password":"secure_password_123","new_password":"a brand new password","confirm_password":"A brand new password"}`, 400, "invalid_request", "confirm_password")
		e.call("GET", "/v1/me", janeToken, "", 200) // the refusals changed nothing
		e.login("jane@example.com", "secure_password_123")

		other := e.login("jane@example.com", "secure_password_123") // another device
		r := e.call("PUT", path, janeToken, `{"current_password":"secure_password_123","new_password":"a brand new password","confirm_password":"a brand new password"}`, 200)
		if r.Message == "" {
			t.Error("no message")
		}
		e.fail("GET", "/v1/me", janeToken, "", 401, "invalid_token", "")
		e.fail("GET", "/v1/me", other, "", 401, "invalid_token", "")
		e.fail("POST", "/v1/auth/login", "", `{"email":"jane@example.com","password":"secure_password_123"}`, 401, "invalid_credentials", "")
		janeToken = e.login("jane@example.com", "a brand new password")
	})

	t.Run("AdminSetPassword", func(t *testing.T) {
		e.tb = t
		cy := others[1]
		path := "/v1/users/" + cy.ID + "/password"
		cyToken := e.login(cy.Email, "correct horse battery staple")
		e.fail("PUT", path, admin, `{"new_password":"set by the admin"}`, 400, "invalid_request", "confirm_password")
		e.fail("PUT", path, admin, `{"new_password":"set by the admin","confirm_password":"set by the admin!"}`, 400, "invalid_request", "confirm_password")
		e.fail("PUT", path, admin, `{"confirm_password":"set by the admin"}`, 400, "invalid_request", "new_password")
		e.fail("PUT", path, admin, `{"new_password":"short","confirm_password":"short"}`, 400, "invalid_request", "new_password")
		e.fail("PUT", path, admin, `{"new_password":"password123","confirm_password":"password123"}`, 400, "invalid_request", "new_password")
		e.fail("PUT", path, admin, `{"current_password":"x","new_password":"set by the admin","confirm_password":"set by the admin"}`, 400, "invalid_request", "current_password")
		e.fail("PUT", "/v1/users/01ARZ3NDEKTSV4RRFFQ69G5FAV/password", admin, `{"new_password":"set by the admin","confirm_password":"set by the admin"}`, 404, "not_found", "")
		adminID := e.call("GET", "/v1/me", admin, "", 200).user(t).ID
		e.fail("PUT", "/v1/users/"+adminID+"/password", admin, `{"new_password":"set by the admin","confirm_password":"set by the admin"}`, 403, "forbidden", "")
		e.call("GET", "/v1/me", cyToken, "", 200) // the refusals changed nothing

		e.call("PUT", path, admin, `{"new_password":"set by the admin","confirm_password":"set by the admin"}`, 200)
		e.fail("GET", "/v1/me", cyToken, "", 401, "invalid_token", "")
		e.fail("POST", "/v1/auth/login", "", `{"email":"cy@example.com","password":"correct horse battery staple"}`, 401, "invalid_credentials", "")
		e.login("cy@example.com", "set by the admin")
		e.call("GET", "/v1/me", admin, "", 200) // the admin's own session lives on
	})

	t.Run("Logout", func(t *testing.T) {
		e.tb = t
		tok := e.login("jane@example.com", "a brand new password")
		if r := e.call("POST", "/v1/auth/logout", tok, "", 200); r.Message != "Logged out successfully" {
			t.Errorf("message %q", r.Message)
		}
		e.fail("GET", "/v1/me", tok, "", 401, "invalid_token", "")
		e.fail("POST", "/v1/auth/logout", tok, "", 401, "invalid_token", "")
		e.call("GET", "/v1/me", janeToken, "", 200) // other sessions live on
	})

	t.Run("Delete", func(t *testing.T) {
		e.tb = t
		dee := others[2]
		deeToken := e.login(dee.Email, "correct horse battery staple")
		r := e.call("DELETE", "/v1/users/"+dee.ID, admin, "", 200)
		if r.Message != "User deleted successfully" || r.Data != nil || r.Raw != `{"success":true,"message":"User deleted successfully"}`+"\n" {
			t.Errorf("delete answered %s", r.Raw)
		}
		e.fail("GET", "/v1/users/"+dee.ID, admin, "", 404, "not_found", "")
		e.fail("DELETE", "/v1/users/"+dee.ID, admin, "", 404, "not_found", "")
		e.fail("GET", "/v1/me", deeToken, "", 401, "invalid_token", "")
		adminID := e.call("GET", "/v1/me", admin, "", 200).user(t).ID
		e.fail("DELETE", "/v1/users/"+adminID, admin, "", 403, "forbidden", "")
		// The email is free again.
		e.create(admin, `{"email":"dee@example.com","password":"correct horse battery staple"}`)
	})

	t.Run("PasswordReset", func(t *testing.T) {
		e.tb = t
		const path = "/v1/auth/password-reset"
		ok := e.call("POST", path, "", `{"email":"Jane@Example.com"}`, 202)
		token := e.mustMail("password-reset", "jane@example.com")
		if strings.Contains(ok.Raw, token) {
			t.Fatal("the reset token is in the response")
		}
		// Unknown and suspended accounts: the very same answer, and no mail.
		for _, email := range []string{"nobody@example.com", "eve@example.com"} {
			r := e.call("POST", path, "", `{"email":"`+email+`"}`, 202)
			if r.Raw != ok.Raw {
				t.Errorf("answer for %s differs: %s vs %s", email, r.Raw, ok.Raw)
			}
			if ms := e.mail(); len(ms) != 0 {
				t.Errorf("mailed %v for %s", ms, email)
			}
		}
		e.fail("POST", path, "", `{"email":"not an email"}`, 400, "invalid_request", "email")
		e.fail("POST", path, "", `{}`, 400, "invalid_request", "email")

		const confirm = "/v1/auth/password-reset/confirm"
		e.fail("POST", confirm, "", `{"token":"`+token+`","new_password":"short"}`, 400, "invalid_request", "new_password")
		e.fail("POST", confirm, "", `{"token":"`+token+`"}`, 400, "invalid_request", "new_password")
		e.fail("POST", confirm, "", `{"new_password":"reset to this one"}`, 400, "invalid_request", "token")
		e.fail("POST", confirm, "", `{"token":"forged","new_password":"reset to this one"}`, 401, "invalid_token", "")
		e.call("POST", confirm, "", `{"token":"`+token+`","new_password":"reset to this one"}`, 200)
		e.fail("POST", confirm, "", `{"token":"`+token+`","new_password":"reset again please"}`, 401, "invalid_token", "")
		e.fail("GET", "/v1/me", janeToken, "", 401, "invalid_token", "")
		janeToken = e.login("jane@example.com", "reset to this one")
	})

	t.Run("EmailVerification", func(t *testing.T) {
		e.tb = t
		if got := e.call("GET", "/v1/me", janeToken, "", 200).user(t); got.EmailVerified {
			t.Fatal("jane's email is verified already")
		}
		r := e.call("POST", "/v1/me/email-verification", janeToken, "", 202)
		token := e.mustMail("verify-email", "jane@example.com")
		if strings.Contains(r.Raw, token) {
			t.Fatal("the verification token is in the response")
		}
		e.fail("POST", "/v1/auth/verify-email", "", `{"token":""}`, 400, "invalid_request", "token")
		if got := e.call("POST", "/v1/auth/verify-email", "", `{"token":"`+token+`"}`, 200).user(t); !got.EmailVerified || got.ID != jane.ID {
			t.Errorf("verified: %+v", got)
		}
		e.fail("POST", "/v1/auth/verify-email", "", `{"token":"`+token+`"}`, 401, "invalid_token", "")
		if got := e.call("GET", "/v1/me", janeToken, "", 200).user(t); !got.EmailVerified {
			t.Error("me: not verified")
		}
	})

	t.Run("Invite", func(t *testing.T) {
		e.tb = t
		r := e.call("POST", "/v1/users/invite", admin, `{"name":"Ivy Invited","email":"ivy@example.com","role":"viewer"}`, 201)
		ivy := r.user(t)
		token := e.mustMail("invitation", "ivy@example.com")
		if ivy.Status != "invited" || ivy.Role != "viewer" || ivy.Name != "Ivy Invited" || strings.Contains(r.Raw, token) {
			t.Errorf("invited %s", r.Raw)
		}
		e.fail("POST", "/v1/users/invite", admin, `{"email":"ivy@example.com"}`, 409, "duplicate_email", "")
		e.fail("POST", "/v1/users/invite", admin, `{"email":"ivy2@example.com","password":"correct horse battery staple"}`, 400, "invalid_request", "password")
		e.fail("POST", "/v1/users/invite", admin, `{"email":"ivy2@example.com","status":"active"}`, 400, "invalid_request", "status")
		e.fail("POST", "/v1/auth/login", "", `{"email":"ivy@example.com","password":"anything at all"}`, 401, "invalid_credentials", "")
		if got := e.call("GET", "/v1/users?status=invited", admin, "", 200).users(t); len(got) != 1 || got[0].ID != ivy.ID {
			t.Errorf("status=invited: %v", got)
		}

		const accept = "/v1/auth/accept-invite"
		e.fail("POST", accept, "", `{"token":"`+token+`","password":"short"}`, 400, "invalid_request", "password")
		e.fail("POST", accept, "", `{"token":"`+token+`"}`, 400, "invalid_request", "password")
		s := e.call("POST", accept, "", `{"token":"`+token+`","password":"ivy's own password"}`, 200).session(t)
		if s.User.Status != "active" || !s.User.EmailVerified {
			t.Errorf("accepted: %+v", s.User)
		}
		if got := e.call("GET", "/v1/me", s.Token, "", 200).user(t); got.ID != ivy.ID {
			t.Errorf("me = %+v", got)
		}
		e.fail("POST", accept, "", `{"token":"`+token+`","password":"another password"}`, 401, "invalid_token", "")
		e.login("ivy@example.com", "ivy's own password")
	})

	t.Run("MagicLink", func(t *testing.T) {
		e.tb = t
		const path = "/v1/auth/magic-link"
		ok := e.call("POST", path, "", `{"email":"jane@example.com"}`, 202)
		token := e.mustMail("magic-link", "jane@example.com")
		for _, email := range []string{"nobody@example.com", "eve@example.com"} {
			if r := e.call("POST", path, "", `{"email":"`+email+`"}`, 202); r.Raw != ok.Raw {
				t.Errorf("answer for %s differs", email)
			}
			if ms := e.mail(); len(ms) != 0 {
				t.Errorf("mailed %v for %s", ms, email)
			}
		}
		const confirm = "/v1/auth/magic-link/confirm"
		e.fail("POST", confirm, "", `{}`, 400, "invalid_request", "token")
		s := e.call("POST", confirm, "", `{"token":"`+token+`"}`, 200).session(t)
		if got := e.call("GET", "/v1/me", s.Token, "", 200).user(t); got.ID != jane.ID {
			t.Errorf("me = %+v", got)
		}
		e.fail("POST", confirm, "", `{"token":"`+token+`"}`, 401, "invalid_token", "")
	})

	t.Run("AccountAndPreferences", func(t *testing.T) {
		e.tb = t
		ann := e.create(admin, `{"email":"ann@acme.example","account_id":"acme","preferences":{"theme":"dark","lang":"en"},"password":"correct horse battery staple"}`)
		if ann.AccountID != "acme" || ann.Preferences["theme"] != "dark" || ann.Preferences["lang"] != "en" || len(ann.Preferences) != 2 {
			t.Errorf("created %+v", ann)
		}
		invited := e.call("POST", "/v1/users/invite", admin, `{"email":"ian@acme.example","account_id":"acme"}`, 201).user(t)
		e.mustMail("invitation", "ian@acme.example")
		e.create(admin, `{"email":"oz@other.example","account_id":"other","password":"correct horse battery staple"}`)

		r := e.call("GET", "/v1/users?account_id=acme", admin, "", 200)
		if got := r.users(t); len(got) != 2 || got[0].ID != ann.ID || got[1].ID != invited.ID || r.Pagination.Total != 2 {
			t.Errorf("account_id=acme: %s", r.Raw)
		}
		if got := e.call("GET", "/v1/users?account_id=acme&status=invited", admin, "", 200).users(t); len(got) != 1 || got[0].ID != invited.ID {
			t.Errorf("account_id=acme&status=invited: %v", got)
		}
		if got := e.call("GET", "/v1/users?account_id=nobody", admin, "", 200).users(t); len(got) != 0 {
			t.Errorf("account_id=nobody: %v", got)
		}

		// Users write their own preferences (the whole map), but not their account.
		annToken := e.login("ann@acme.example", "correct horse battery staple")
		got := e.call("PATCH", "/v1/users/"+ann.ID, annToken, `{"preferences":{"theme":"light"}}`, 200).user(t)
		if len(got.Preferences) != 1 || got.Preferences["theme"] != "light" || got.AccountID != "acme" {
			t.Errorf("self patch of preferences: %+v", got)
		}
		e.fail("PATCH", "/v1/users/"+ann.ID, annToken, `{"account_id":"other"}`, 403, "forbidden", "")
		if got := e.call("GET", "/v1/me", annToken, "", 200).user(t); got.AccountID != "acme" || got.Preferences["theme"] != "light" {
			t.Errorf("me: %+v", got)
		}
		// Absent leaves them; {} clears the preferences; admins move accounts.
		if got := e.call("PATCH", "/v1/users/"+ann.ID, annToken, `{"first_name":"Ann"}`, 200).user(t); got.Preferences["theme"] != "light" {
			t.Errorf("a patch without preferences changed them: %+v", got)
		}
		got = e.call("PATCH", "/v1/users/"+ann.ID, admin, `{"account_id":"other","preferences":{}}`, 200).user(t)
		if got.AccountID != "other" || got.Preferences != nil {
			t.Errorf("admin patch: %+v", got)
		}
		if got := e.call("GET", "/v1/users?account_id=other", admin, "", 200).users(t); len(got) != 2 {
			t.Errorf("account_id=other after the move: %v", got)
		}
		e.fail("PATCH", "/v1/users/"+ann.ID, admin, `{"account_id":"`+strings.Repeat("a", 129)+`"}`, 400, "invalid_request", "account_id")
		e.fail("PATCH", "/v1/users/"+ann.ID, admin, `{"preferences":{"":"x"}}`, 400, "invalid_request", "preferences")
		e.fail("PATCH", "/v1/users/"+ann.ID, admin, `{"preferences":{"theme":1}}`, 400, "invalid_request", "preferences")
		e.fail("POST", "/v1/users", admin, `{"email":"bad@acme.example","preferences":["dark"],"password":"correct horse battery staple"}`, 400, "invalid_request", "preferences")
	})

	t.Run("SignUpIsOff", func(t *testing.T) {
		e.tb = t
		e.fail("POST", "/v1/auth/signup", "", `{"email":"new@example.com"}`, 404, "not_found", "")
		if ms := e.mail(); len(ms) != 0 {
			t.Errorf("mailed %v", ms)
		}
	})

	t.Run("Routing", func(t *testing.T) {
		e.tb = t
		e.fail("GET", "/v1/nope", admin, "", 404, "not_found", "")
		e.fail("GET", "/", "", "", 404, "not_found", "")
		r := e.fail("DELETE", "/v1/users", admin, "", 405, "method_not_allowed", "")
		if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
			t.Errorf("Allow = %q", allow)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", got)
		}
	})
}

func TestPanicIsJSON(t *testing.T) {
	var logs strings.Builder
	s := &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	rec := httptest.NewRecorder()
	s.common(mux).ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"code":"internal_error"`) || strings.Contains(rec.Body.String(), "kaboom") {
		t.Errorf("panic answered %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "kaboom") {
		t.Error("the panic was not logged")
	}
}

// TestRun starts the program on a free port and a temporary bbolt file, logs in,
// stops it as SIGTERM would, and checks that it closed the store.
func TestRun(t *testing.T) {
	db := filepath.Join(t.TempDir(), "users.db")
	t.Setenv("USERS_ADMIN_PASSWORD", adminPassword)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-db", db, "-addr", "127.0.0.1:0", "-admin-email", adminEmail, "-bcrypt-cost", "10"}, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v (run: %v)", err, <-done)
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("first line %q", line)
	}
	go io.Copy(io.Discard, pr)

	res, err := http.Post(base+"/v1/auth/login", "application/json",
		strings.NewReader(`{"email":"`+adminEmail+`","password":"`+adminPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("login status %d", res.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v, want a clean stop", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	s, err := users.OpenBoltStore(db, &users.BoltOptions{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("reopening the store: %v (was it closed?)", err)
	}
	s.Close()
}

// do sends a request with extra headers (a User-Agent, an X-Forwarded-For) and
// checks the status.
func (e *env) do(method, path, token, body string, header map[string]string, status int) *response {
	e.tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return e.send(req, status)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
