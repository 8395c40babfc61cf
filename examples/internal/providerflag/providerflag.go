// Package providerflag defines the examples' flags for signing in with an
// external identity provider: a generic OpenID Connect provider, Google and
// GitHub, each on only when its client ID is given, so that an example runs
// with none. The client secrets come from the environment, never a flag:
// every user of the machine can read a process's arguments (ps,
// /proc/PID/cmdline).
package providerflag

import (
	"errors"
	"flag"

	"github.com/userkit/users"
)

// Define defines on fl the flags -oidc-issuer, -oidc-client-id and
// -oidc-name (a generic OpenID Connect provider named "oidc", its secret in
// $USERS_OIDC_CLIENT_SECRET), -google-client-id ($USERS_GOOGLE_CLIENT_SECRET)
// and -github-client-id ($USERS_GITHUB_CLIENT_SECRET), reading the
// environment with getenv. Once fl is parsed, the returned function makes
// the users.Options.Providers they name, in that order, with each one's
// RedirectURL from redirectURL(name): the URL to register at the provider.
// It returns an error when only one of -oidc-issuer and -oidc-client-id is
// given. The providers neither sign up nor link by email (the library's
// defaults): the caller turns AllowSignUp on where its site lets anyone sign
// up.
func Define(fl *flag.FlagSet, getenv func(string) string) func(redirectURL func(name string) string) ([]users.Provider, error) {
	issuer := fl.String("oidc-issuer", "", `an OpenID Connect provider's issuer URL, to sign in with it (with -oidc-client-id; secret in $USERS_OIDC_CLIENT_SECRET)`)
	oidcID := fl.String("oidc-client-id", "", "this site's client ID at -oidc-issuer")
	oidcName := fl.String("oidc-name", "Single sign-on", "what the -oidc-issuer provider is called to users")
	googleID := fl.String("google-client-id", "", `this site's client ID at Google, to sign in with Google (secret in $USERS_GOOGLE_CLIENT_SECRET)`)
	githubID := fl.String("github-client-id", "", `this site's client ID at GitHub, to sign in with GitHub (secret in $USERS_GITHUB_CLIENT_SECRET)`)
	return func(redirectURL func(name string) string) ([]users.Provider, error) {
		var ps []users.Provider
		if (*issuer == "") != (*oidcID == "") {
			return nil, errors.New("-oidc-issuer and -oidc-client-id go together")
		}
		if *issuer != "" {
			ps = append(ps, users.Provider{Name: "oidc", DisplayName: *oidcName, Issuer: *issuer,
				ClientID: *oidcID, ClientSecret: getenv("USERS_OIDC_CLIENT_SECRET"), RedirectURL: redirectURL("oidc")})
		}
		if *googleID != "" {
			ps = append(ps, users.Google(*googleID, getenv("USERS_GOOGLE_CLIENT_SECRET"), redirectURL("google")))
		}
		if *githubID != "" {
			ps = append(ps, users.GitHub(*githubID, getenv("USERS_GITHUB_CLIENT_SECRET"), redirectURL("github")))
		}
		return ps, nil
	}
}
