package web

import (
	"html/template"
	"net/http"
	"time"

	"github.com/contactsdav/contactsdav/accounts"
)

// pageData is what the templates show.
type pageData struct {
	Prefix       string
	User         string
	CSRF         string
	Password     string // a new app password, shown once
	ProfileToken string // one-time token for a profile holding Password
	Message      string
	Error        string
	CardDAVURL   string
	PrincipalURL string
	DAVx5URL     template.URL // davx5: is not a scheme html/template passes otherwise
	HasCA        bool
	NeedsSignIn  bool
	AppPasswords []accounts.AppPassword
}

func (h *Handler) pageData(s *session, password, message string) pageData {
	d := pageData{Prefix: h.opts.Prefix, CardDAVURL: h.opts.CardDAVURL, HasCA: len(h.opts.CAPEM) > 0, Message: message, Password: password}
	if s != nil {
		d.User, d.CSRF = s.user, s.csrf
		d.PrincipalURL = PrincipalURL(h.opts.CardDAVURL, s.user)
		d.DAVx5URL = template.URL(DAVx5URL(h.opts.CardDAVURL, s.user))
	}
	return d
}

func (h *Handler) renderAccount(w http.ResponseWriter, s *session, password, message string) {
	d := h.pageData(s, password, message)
	if password != "" {
		d.ProfileToken = randomString(24)
		h.mu.Lock()
		h.pruneLocked(time.Now())
		if len(h.profiles) >= maxEntries {
			clear(h.profiles)
		}
		h.profiles[d.ProfileToken] = oneTime{user: s.user, password: password, expires: time.Now().Add(profileTTL)}
		h.mu.Unlock()
	}
	if a, err := h.opts.Registry.Get(s.user); err == nil {
		d.NeedsSignIn = a.NeedsSignIn
	}
	list, err := h.opts.Registry.ListAppPasswords(s.user)
	if err != nil {
		h.log.Error("listing app passwords", "user", s.user, "err", err)
	}
	d.AppPasswords = list
	h.render(w, http.StatusOK, "account", d)
}

func (h *Handler) renderError(w http.ResponseWriter, status int, msg string) {
	d := h.pageData(nil, "", "")
	d.Error = msg
	h.render(w, status, "error", d)
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		h.log.Error("rendering a page", "page", name, "err", err)
	}
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>contactsdav</title>
<style>
body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
code,.pw{font-family:ui-monospace,monospace;background:#f3f3f3;padding:.1rem .3rem;border-radius:.2rem}
.pw{font-size:1.4rem;display:inline-block;padding:.3rem .6rem}
.note{background:#fff8d8;padding:.5rem 1rem;border-radius:.3rem}
.err{background:#fde2e2;padding:.5rem 1rem;border-radius:.3rem}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd}
form.inline{display:inline}
</style></head><body><h1>contactsdav</h1>{{end}}

{{define "landing"}}{{template "head" .}}
<p>Use your Microsoft contacts from any CardDAV app (iPhone, Mac, Thunderbird, DAVx⁵).</p>
<p><a href="{{.Prefix}}/start"><strong>Sign in with Microsoft</strong></a></p>
</body></html>{{end}}

{{define "error"}}{{template "head" .}}
<p class="err" id="error">{{.Error}}</p>
<p><a href="{{.Prefix}}/start">Sign in with Microsoft</a></p>
</body></html>{{end}}

{{define "account"}}{{template "head" .}}
<p>Signed in as <strong id="user">{{.User}}</strong>.</p>
{{if .NeedsSignIn}}<p class="err">Microsoft no longer accepts this server's sign-in for your account.
<a href="{{.Prefix}}/start">Sign in again</a> — your app passwords stay valid.</p>{{end}}
{{if .Message}}<p class="note" id="message">{{.Message}}</p>{{end}}
{{if .Password}}
<h2>Your new app password</h2>
<p class="note">Shown only now. Copy it into your CardDAV app or use a setup link below.</p>
<table>
<tr><th>Server URL</th><td><code id="carddav-url">{{.CardDAVURL}}</code></td></tr>
<tr><th>User name</th><td><code>{{.User}}</code></td></tr>
<tr><th>Password</th><td><span class="pw" id="app-password">{{.Password}}</span></td></tr>
</table>
<ul>
<li>iPhone, iPad, Mac: <a id="profile" href="{{.Prefix}}/profile.mobileconfig?t={{.ProfileToken}}">download the configuration profile</a> (with this password; the link works for 10 minutes){{if .HasCA}}. It also installs this server's certificate authority: on iPhone and iPad turn it on under Settings › General › About › Certificate Trust Settings{{end}}.</li>
<li>Android: <a id="davx5" href="{{.DAVx5URL}}">open in DAVx⁵</a> and paste the password.</li>
<li>Thunderbird and others: add a CardDAV address book with the server URL <code>{{.CardDAVURL}}</code> (or the principal <code>{{.PrincipalURL}}</code>).</li>
</ul>
{{else}}
<p>CardDAV server: <code id="carddav-url">{{.CardDAVURL}}</code>, user name <code>{{.User}}</code>.
<a href="{{.Prefix}}/profile.mobileconfig">Configuration profile without password</a> (the device asks for it).
{{if .HasCA}}<a href="{{.Prefix}}/CA.pem">Certificate authority</a>.{{end}}</p>
{{end}}
<h2>App passwords</h2>
<table id="app-passwords"><tr><th>Label</th><th>Created</th><th>Last used</th><th></th></tr>
{{range .AppPasswords}}<tr><td>{{.Label}}</td><td>{{date .Created}}</td><td>{{date .LastUsed}}</td>
<td><form class="inline" method="post" action="{{$.Prefix}}/app-passwords/revoke">
<input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="id" value="{{.ID}}">
<button type="submit">Revoke</button></form></td></tr>
{{else}}<tr><td colspan="4">None.</td></tr>{{end}}
</table>
<form method="post" action="{{.Prefix}}/app-passwords">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label>New app password for <input name="label" maxlength="100" placeholder="e.g. iPhone"></label>
<button type="submit">Issue</button></form>
<form method="post" action="{{.Prefix}}/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button type="submit">Sign out of this page</button></form>
</body></html>{{end}}
`))
