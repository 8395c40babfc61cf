package users

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// GitHubAdapter returns the OAuth2Adapter of GitHub's OAuth apps: webURL is
// where its authorization and token endpoints live and apiURL its REST API
// (empty means https://github.com and https://api.github.com; a GitHub
// Enterprise server or a test server gives its own). Its default scopes are
// "read:user" and "user:email". The subject is the numeric account ID, which
// never changes (a login name can); the email is the account's primary
// address from /user/emails with GitHub's verified flag, or else the public
// one from /user, unverified.
func GitHubAdapter(webURL, apiURL string) *OAuth2Adapter {
	webURL = strings.TrimSuffix(or(webURL, githubWebURL), "/")
	apiURL = strings.TrimSuffix(or(apiURL, githubAPIURL), "/")
	return &OAuth2Adapter{
		AuthURL:  webURL + "/login/oauth/authorize",
		TokenURL: webURL + "/login/oauth/access_token",
		Scopes:   []string{"read:user", "user:email"},
		Profile: func(ctx context.Context, client *http.Client) (*ProviderProfile, error) {
			return githubProfile(ctx, client, apiURL)
		},
	}
}

// githubProfile asks GitHub's API who the token's user is.
func githubProfile(ctx context.Context, client *http.Client, apiURL string) (*ProviderProfile, error) {
	var u struct {
		ID        int64  `json:"id"`
		Login     string `json:"login"`
		Name      string `json:"name"`
		Email     string `json:"email"`
		AvatarURL string `json:"avatar_url"`
	}
	if err := githubGet(ctx, client, apiURL+"/user", &u); err != nil {
		return nil, err
	}
	if u.ID <= 0 {
		return nil, fmt.Errorf("github: /user has no account id")
	}
	p := &ProviderProfile{Subject: strconv.FormatInt(u.ID, 10), Name: or(u.Name, u.Login), Email: u.Email, AvatarURL: u.AvatarURL}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := githubGet(ctx, client, apiURL+"/user/emails", &emails); err != nil {
		return nil, err
	}
	for _, e := range emails {
		if e.Primary {
			p.Email, p.EmailVerified = e.Email, e.Verified
		}
	}
	return p, nil
}

// githubGet reads one JSON answer of GitHub's API into v.
func githubGet(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("github: %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}
