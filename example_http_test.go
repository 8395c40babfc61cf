package users_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/userkit/users"
)

func ExampleTokenFromRequest() {
	r := httptest.NewRequest("GET", "/v1/me", nil)
	r.Header.Set("Authorization", "Bearer abc123")
	fmt.Printf("%q\n", users.TokenFromRequest(r, "session"))

	r = httptest.NewRequest("GET", "/v1/me", nil)
	r.AddCookie(&http.Cookie{Name: "session", Value: "from-cookie"})
	fmt.Printf("%q\n", users.TokenFromRequest(r, "session"))

	r = httptest.NewRequest("GET", "/v1/me", nil)
	fmt.Printf("%q\n", users.TokenFromRequest(r, "session"))
	// Output:
	// "abc123"
	// "from-cookie"
	// ""
}

func ExampleManager_Middleware() {
	ctx := context.Background()
	m := exampleManager()
	m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})
	s, _ := m.Login(ctx, "ada@example.com", "analytical engine 1843")

	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := users.FromContext(r.Context()) // always there behind Middleware
		fmt.Fprintln(w, "hello", s.User.Email)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /v1/me", m.Middleware("session", me))

	for _, auth := range []string{"Bearer " + s.Token, "Bearer forged", ""} {
		r := httptest.NewRequest("GET", "/v1/me", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body)
	}
	// Output:
	// 200 hello ada@example.com
	// 401 {"success":false,"error":{"code":"invalid_token","message":"Invalid or expired token"}}
	// 401 {"success":false,"error":{"code":"invalid_token","message":"Authentication required"}}
}

func ExampleRequireRole() {
	ctx := context.Background()
	m := exampleManager()
	m.Create(ctx, users.NewUser{Email: "root@example.com", Password: "analytical engine 1843", Role: users.RoleAdmin})
	m.Create(ctx, users.NewUser{Email: "val@example.com", Password: "analytical engine 1843", Role: users.RoleViewer})

	adminOnly := users.RequireRole(users.RoleAdmin)
	list := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "the user list") })
	h := m.Middleware("", adminOnly(list)) // Middleware first: it puts the session in the context

	for _, email := range []string{"root@example.com", "val@example.com"} {
		s, _ := m.Login(ctx, email, "analytical engine 1843")
		r := httptest.NewRequest("GET", "/v1/users", nil)
		r.Header.Set("Authorization", "Bearer "+s.Token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Print(email, " ", w.Code, " ", w.Body)
	}
	// Output:
	// root@example.com 200 the user list
	// val@example.com 403 {"success":false,"error":{"code":"forbidden","message":"You do not have permission to do this"}}
}

func ExampleHTTPError() {
	ctx := context.Background()
	m := exampleManager()
	_, err := m.Create(ctx, users.NewUser{Email: "not an email", Password: "analytical engine 1843"})
	status, code, field := users.HTTPError(err)
	fmt.Printf("%d %s field=%q\n", status, code, field)

	_, err = m.Get(ctx, "01KNOWNTOBEMISSING0000000")
	status, code, field = users.HTTPError(err)
	fmt.Printf("%d %s field=%q\n", status, code, field)

	_, err = m.Login(ctx, "nobody@example.com", "guess")
	status, code, field = users.HTTPError(err)
	fmt.Printf("%d %s field=%q\n", status, code, field)
	// Output:
	// 400 invalid_request field="email"
	// 404 not_found field=""
	// 401 invalid_credentials field=""
}

func ExampleWriteError() {
	m := exampleManager()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := m.Create(r.Context(), users.NewUser{Email: r.FormValue("email"), Password: "analytical engine 1843"})
		if err != nil {
			users.WriteError(w, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	for _, email := range []string{"ada@example.com", "ada@example.com", "ada.example.com"} {
		r := httptest.NewRequest("POST", "/v1/users", strings.NewReader("email="+email))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(strings.TrimSpace(fmt.Sprint(w.Code, " ", w.Body)))
	}
	// Output:
	// 201
	// 409 {"success":false,"error":{"code":"duplicate_email","message":"A user with this email already exists"}}
	// 400 {"success":false,"error":{"code":"invalid_request","message":"Invalid email: must contain exactly one @","field":"email","reason":"malformed","fields":[{"field":"email","reason":"malformed","message":"Invalid email: must contain exactly one @"}]}}
}

func ExampleFromContext() {
	// A handler behind Manager.Middleware finds the session in its request's
	// context. Tests of such a handler can put one there with NewContext.
	hello := func(w http.ResponseWriter, r *http.Request) {
		s, ok := users.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello %s (%s)\n", s.User.Email, s.User.Role)
	}

	s := &users.Session{UserID: "u1", User: &users.User{ID: "u1", Email: "ada@example.com", Role: users.RoleAdmin}}
	r := httptest.NewRequest("GET", "/v1/me", nil)
	r = r.WithContext(users.NewContext(r.Context(), s))
	w := httptest.NewRecorder()
	hello(w, r)
	fmt.Print(w.Body)
	// Output:
	// hello ada@example.com (admin)
}
