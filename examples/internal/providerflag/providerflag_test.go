package providerflag

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/userkit/users"
)

func redirect(name string) string { return "https://site.example/cb/" + name }

func parse(t *testing.T, env map[string]string, args ...string) ([]users.Provider, error) {
	t.Helper()
	fl := flag.NewFlagSet("test", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	providers := Define(fl, func(k string) string { return env[k] })
	if err := fl.Parse(args); err != nil {
		t.Fatal(err)
	}
	return providers(redirect)
}

func TestDefine(t *testing.T) {
	t.Run("None", func(t *testing.T) {
		ps, err := parse(t, nil)
		if err != nil || len(ps) != 0 {
			t.Errorf("no flags: %v, %v; want no provider", ps, err)
		}
	})
	t.Run("All", func(t *testing.T) {
		env := map[string]string{"USERS_OIDC_CLIENT_SECRET": "s1", "USERS_GOOGLE_CLIENT_SECRET": "s2", "USERS_GITHUB_CLIENT_SECRET": "s3"}
		ps, err := parse(t, env, "-oidc-issuer", "https://idp.example", "-oidc-client-id", "c1", "-oidc-name", "Acme",
			"-google-client-id", "c2", "-github-client-id", "c3")
		if err != nil || len(ps) != 3 {
			t.Fatalf("%v, %v; want three providers", ps, err)
		}
		for i, want := range []struct{ name, display, id, secret string }{
			{"oidc", "Acme", "c1", "s1"}, {"google", "Google", "c2", "s2"}, {"github", "GitHub", "c3", "s3"},
		} {
			p := ps[i]
			if p.Name != want.name || p.DisplayName != want.display || p.ClientID != want.id || p.ClientSecret != want.secret ||
				p.RedirectURL != redirect(want.name) || p.AllowSignUp || p.LinkByEmail {
				t.Errorf("provider %d: %+v, want %+v, no sign-up, no linking by email", i, p, want)
			}
		}
		if ps[0].Issuer != "https://idp.example" {
			t.Errorf("issuer %q", ps[0].Issuer)
		}
	})
	t.Run("IssuerWithoutClient", func(t *testing.T) {
		if _, err := parse(t, nil, "-oidc-issuer", "https://idp.example"); err == nil || !strings.Contains(err.Error(), "-oidc-client-id") {
			t.Errorf("err %v, want one naming -oidc-client-id", err)
		}
	})
	t.Run("NoSecretFlag", func(t *testing.T) {
		fl := flag.NewFlagSet("test", flag.ContinueOnError)
		Define(fl, func(string) string { return "" })
		fl.VisitAll(func(f *flag.Flag) {
			if strings.Contains(f.Name, "secret") {
				t.Errorf("flag -%s: a secret in a flag is readable by every user (ps)", f.Name)
			}
		})
	})
}
