package users_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/userkit/users"
)

// TestValidationCodes_EverySiteGivesOne reads the package's source: every
// call of invalid and every ValidationError literal must name one of the
// Validation* constants, and those constants must be exactly what
// ValidationCodes lists. A new refusal without a code, or a code left out of
// the list, fails here before any client sees an empty "reason".
func TestValidationCodes_EverySiteGivesOne(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	consts := map[string]users.ValidationCode{} // constant name -> value
	type site struct {
		pos  token.Position
		code ast.Expr // nil when the literal has no Code
	}
	var sites []site
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				return n.Name.Name != "invalid" // its literal passes its callers' codes on
			case *ast.ValueSpec:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "ValidationCode" {
					for i, nm := range n.Names {
						lit, ok := n.Values[i].(*ast.BasicLit)
						if !ok {
							t.Errorf("%s: %s is not a string literal", fset.Position(nm.Pos()), nm.Name)
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						consts[nm.Name] = users.ValidationCode(v)
					}
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "invalid" {
					if len(n.Args) != 3 {
						t.Errorf("%s: invalid called with %d arguments, want field, code, reason", fset.Position(n.Pos()), len(n.Args))
						return true
					}
					sites = append(sites, site{fset.Position(n.Pos()), n.Args[1]})
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "ValidationError" {
					s := site{pos: fset.Position(n.Pos())}
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Code" {
								s.code = kv.Value
							}
						}
					}
					sites = append(sites, s)
				}
			}
			return true
		})
	}
	if len(sites) < 50 {
		t.Fatalf("found %d sites that make a ValidationError; the walk is broken", len(sites))
	}
	for _, s := range sites {
		id, ok := s.code.(*ast.Ident)
		if !ok {
			t.Errorf("%s: a ValidationError whose code is not one of the Validation* constants", s.pos)
			continue
		}
		if _, known := consts[id.Name]; !known {
			t.Errorf("%s: code %s is not a ValidationCode constant", s.pos, id.Name)
		}
	}
	listed := users.ValidationCodes()
	for name, v := range consts {
		if v == "" || !slices.Contains(listed, v) {
			t.Errorf("%s = %q is missing from ValidationCodes()", name, v)
		}
	}
	if len(listed) != len(consts) {
		t.Errorf("ValidationCodes() has %d codes, the source declares %d", len(listed), len(consts))
	}
	n := len(listed)
	slices.Sort(listed)
	if len(slices.Compact(listed)) != n {
		t.Errorf("ValidationCodes() lists a code twice")
	}
}

// TestValidationCodes_Returned drives refusals through the public API and
// checks each one's field and code, including a password checker's own
// errors, which get ValidationPasswordRejected unless they carry a code.
func TestValidationCodes_Returned(t *testing.T) {
	ctx := t.Context()
	plain := errors.New("too similar to the old one")
	f := newFixture(t, func(o *users.Options) {
		o.PasswordChecker = func(ctx context.Context, pw string, u *users.User) error {
			switch pw {
			case "checker says no":
				return plain
			case "checker says bare":
				return &users.ValidationError{Field: "password", Reason: "not that one"}
			case "checker says own":
				return &users.ValidationError{Field: "password", Code: "app_rule", Reason: "not that one either"}
			}
			return users.DefaultPasswordChecker(ctx, pw, u)
		}
	})
	m := f.M
	create := func(nu users.NewUser) error {
		if nu.Email == "" {
			nu.Email = "ada@example.com"
		}
		if nu.Password == "" && nu.PasswordHash == "" {
			nu.Password = "analytical engine 1843"
		}
		_, err := m.Create(ctx, nu)
		return err
	}
	for _, tc := range []struct {
		name  string
		err   error
		field string
		code  users.ValidationCode
	}{
		{"EmailEmpty", create(users.NewUser{Email: " "}), "email", users.ValidationRequired},
		{"EmailNotASCII", create(users.NewUser{Email: "\u212aada@example.com"}), "email", users.ValidationNotASCII},
		{"EmailNoAt", create(users.NewUser{Email: "ada.example.com"}), "email", users.ValidationMalformed},
		{"EmailLocalTooLong", create(users.NewUser{Email: strings.Repeat("a", 65) + "@example.com"}), "email", users.ValidationTooLong},
		{"EmailTooLong", create(users.NewUser{Email: "a@" + strings.Repeat("b", 260) + ".com"}), "email", users.ValidationTooLong},
		{"UsernameShort", create(users.NewUser{Username: "ab"}), "username", users.ValidationTooShort},
		{"UsernameLong", create(users.NewUser{Username: strings.Repeat("a", 33)}), "username", users.ValidationTooLong},
		{"UsernameChars", create(users.NewUser{Username: "a b c"}), "username", users.ValidationMalformed},
		{"PasswordShort", create(users.NewUser{Password: "short"}), "password", users.ValidationTooShort},
		{"PasswordControl", create(users.NewUser{Password: "analytical\x00engine"}), "password", users.ValidationControlCharacter},
		{"PasswordCommon", create(users.NewUser{Password: "password123"}), "password", users.ValidationCommonPassword},
		{"PasswordPersonal", create(users.NewUser{Password: "ada@example.com"}), "password", users.ValidationPersonalPassword},
		{"PasswordAndHash", create(users.NewUser{Password: "analytical engine 1843", PasswordHash: "$2a$04$x"}), "password_hash", users.ValidationExclusive},
		{"HashMalformed", create(users.NewUser{PasswordHash: "md5:abc"}), "password_hash", users.ValidationMalformed},
		{"HashCostAboveBound", create(users.NewUser{PasswordHash: "$2a$31$" + strings.Repeat("a", 53)}), "password_hash.cost", users.ValidationOutOfRange},
		{"CheckerPlainError", create(users.NewUser{Password: "checker says no"}), "password", users.ValidationPasswordRejected},
		{"CheckerBareValidationError", create(users.NewUser{Password: "checker says bare"}), "password", users.ValidationPasswordRejected},
		{"NameControl", create(users.NewUser{FirstName: "Ada\x07"}), "first_name", users.ValidationControlCharacter},
		{"NameInvalidUTF8", create(users.NewUser{LastName: "Ada\xff"}), "last_name", users.ValidationInvalidUTF8},
		{"AvatarURL", create(users.NewUser{AvatarURL: "javascript:alert(1)"}), "avatar_url", users.ValidationMalformed},
		{"Role", create(users.NewUser{Role: "root"}), "role", users.ValidationNotOneOf},
		{"Status", create(users.NewUser{Status: "gone"}), "status", users.ValidationNotOneOf},
		{"ListLimit", func() error { _, err := m.Find(ctx, users.Filter{Limit: -1}); return err }(), "limit", users.ValidationNegative},
		{"AuditRange", func() error {
			_, err := m.Audit(ctx, users.AuditFilter{Since: f.Clock.Now(), Until: f.Clock.Now()})
			return err
		}(), "until", users.ValidationInvalidRange},
		{"AuditCursor", func() error { _, err := m.Audit(ctx, users.AuditFilter{Before: "not a cursor"}); return err }(), "before", users.ValidationMalformed},
		{"Options", func() error {
			_, err := users.New(users.NewMemoryStore(), &users.Options{MaxFailedLogins: 1000})
			return err
		}(), "options.MaxFailedLogins", users.ValidationOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ve *users.ValidationError
			if !errors.As(tc.err, &ve) {
				t.Fatalf("got %v, want a *ValidationError", tc.err)
			}
			if ve.Field != tc.field || ve.Code != tc.code {
				t.Errorf("got field %q code %q (%v), want %q %q", ve.Field, ve.Code, tc.err, tc.field, tc.code)
			}
			if !slices.Contains(users.ValidationCodes(), ve.Code) {
				t.Errorf("code %q is not in ValidationCodes()", ve.Code)
			}
		})
	}
	t.Run("CheckerOwnCode", func(t *testing.T) {
		// An application's own code is the application's: it comes back as is.
		var ve *users.ValidationError
		if err := create(users.NewUser{Password: "checker says own"}); !errors.As(err, &ve) || ve.Code != "app_rule" {
			t.Errorf("got %v (code %v), want the checker's code app_rule", err, ve)
		}
	})
	if got, _ := m.Count(ctx, users.Filter{}); got != 0 {
		t.Errorf("%d users stored after refusals, want 0", got)
	}
}
