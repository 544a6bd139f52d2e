package accounts

import (
	"strings"

	"golang.org/x/oauth2"
)

// Scopes are the delegated Microsoft Graph permissions the gateway asks for:
// contacts, a refresh token (offline_access) and GET /me for the sign-in name.
var Scopes = []string{"Contacts.ReadWrite", "offline_access", "User.Read"}

// MicrosoftEndpoint returns the Microsoft identity platform v2.0 endpoints
// of tenant (common, organizations, consumers or a directory GUID) at
// loginBase (a cloud's sign-in host such as https://login.microsoftonline.com,
// or the emulator's URL). Client credentials go in the form body: Microsoft
// public clients have no secret to put in a Basic header.
func MicrosoftEndpoint(loginBase, tenant string) oauth2.Endpoint {
	if tenant == "" {
		tenant = "common"
	}
	base := strings.TrimSuffix(loginBase, "/") + "/" + tenant + "/oauth2/v2.0/"
	return oauth2.Endpoint{
		AuthURL:       base + "authorize",
		TokenURL:      base + "token",
		DeviceAuthURL: base + "devicecode",
		AuthStyle:     oauth2.AuthStyleInParams,
	}
}
