package web

import (
	"context"
	"errors"
	"net/http"

	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// SignInName asks Graph who an access token speaks for (GET {graphBase}/me,
// needs User.Read) and returns the name the user signs in with: the UPN, or
// the mail address when Graph has no UPN (some personal accounts). client
// nil means http.DefaultClient.
func SignInName(ctx context.Context, client *http.Client, graphBase, accessToken string) (string, error) {
	c, err := graph.New(graph.Options{
		BaseURL:     graphBase,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken}),
		HTTPClient:  client,
		// Someone is waiting at a sign-in page or a terminal: a failure is
		// reported at once, not after minutes of backoff.
		MaxRetries: -1,
	})
	if err != nil {
		return "", err
	}
	u, err := c.Me(ctx)
	if err != nil {
		return "", err
	}
	if u.UserPrincipalName != "" {
		return u.UserPrincipalName, nil
	}
	if u.Mail != "" {
		return u.Mail, nil
	}
	return "", errors.New("GET /me: no userPrincipalName or mail")
}
