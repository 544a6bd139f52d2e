package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// User is the part of Graph's GET /me the gateway needs.
type User struct {
	ID                string `json:"id"`
	DisplayName       string `json:"displayName"`
	UserPrincipalName string `json:"userPrincipalName"`
	Mail              string `json:"mail"`
}

// SignInName is the name the user signs in with: the UPN, or the mail
// address when Graph has no UPN (some personal accounts).
func (u *User) SignInName() string {
	if u.UserPrincipalName != "" {
		return u.UserPrincipalName
	}
	return u.Mail
}

// Me calls GET {graphBase}/me with the access token (Graph v1.0, needs
// User.Read). client nil means http.DefaultClient.
func Me(ctx context.Context, client *http.Client, graphBase, accessToken string) (*User, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		strings.TrimSuffix(graphBase, "/")+"/me?$select=id,displayName,userPrincipalName,mail", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /me: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET /me: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("GET /me: %s %s %s", resp.Status, e.Error.Code, e.Error.Message)
	}
	var u User
	if err := json.Unmarshal(body, &u); err != nil {
		return nil, fmt.Errorf("GET /me: %w", err)
	}
	if u.SignInName() == "" {
		return nil, fmt.Errorf("GET /me: no userPrincipalName or mail")
	}
	return &u, nil
}
