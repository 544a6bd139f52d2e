package web

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Profile describes an Apple configuration profile (.mobileconfig) that sets
// up one CardDAV account on iOS, iPadOS or macOS.
type Profile struct {
	// CardDAVURL is the server's CardDAV root, e.g. https://dav.example.org/.
	CardDAVURL string
	// User is the CardDAV user name.
	User string
	// Password is the app password; empty leaves it out, and the device
	// asks for it when the profile is installed.
	Password string
	// Description names the account on the device (default "Microsoft contacts").
	Description string
	// CAPEM, when set, is the local CA (PEM) added as a trusted root payload,
	// for servers with a self-signed certificate.
	CAPEM []byte
}

// PrincipalURL returns the principal's URL for user under a CardDAV root
// (the layout /<user>/ of package carddav).
func PrincipalURL(cardDAVURL, user string) string {
	return strings.TrimSuffix(cardDAVURL, "/") + "/" + url.PathEscape(user) + "/"
}

// DAVx5URL is a link that opens DAVx⁵'s account setup with the server and
// user name filled in (DAVx⁵ handles davx5:// links; the scheme stands for
// https on the given host and path).
func DAVx5URL(cardDAVURL, user string) string {
	u, err := url.Parse(cardDAVURL)
	if err != nil {
		return cardDAVURL
	}
	if u.Scheme != "https" {
		// davx5:// stands for https; a plain-http (test) server gets its
		// own URL to paste instead.
		return cardDAVURL
	}
	v := *u
	v.Scheme = "davx5"
	v.User = url.User(user)
	return v.String()
}

// plist values, written as Apple's property list XML.
type (
	pdict  []pentry
	pentry struct {
		key string
		val any // string, int, bool, []byte, pdict, []pdict
	}
)

func writePlist(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString("<string>")
		xml.EscapeText(b, []byte(v))
		b.WriteString("</string>")
	case int:
		fmt.Fprintf(b, "<integer>%d</integer>", v)
	case bool:
		if v {
			b.WriteString("<true/>")
		} else {
			b.WriteString("<false/>")
		}
	case []byte:
		b.WriteString("<data>")
		b.WriteString(base64.StdEncoding.EncodeToString(v))
		b.WriteString("</data>")
	case pdict:
		b.WriteString("<dict>\n")
		for _, e := range v {
			b.WriteString("<key>")
			xml.EscapeText(b, []byte(e.key))
			b.WriteString("</key>")
			writePlist(b, e.val)
			b.WriteString("\n")
		}
		b.WriteString("</dict>")
	case []pdict:
		b.WriteString("<array>\n")
		for _, d := range v {
			writePlist(b, d)
			b.WriteString("\n")
		}
		b.WriteString("</array>")
	default:
		panic(fmt.Sprintf("plist: unsupported %T", v))
	}
}

// uuidFor derives a stable UUID (version 5 style) from name, so installing
// a newer profile for the same account replaces the old one.
func uuidFor(name string) string {
	h := sha1.Sum([]byte("contactsdav:" + name))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// MobileConfig renders the profile as an unsigned .mobileconfig (serve it as
// application/x-apple-aspen-config).
func (p Profile) MobileConfig() ([]byte, error) {
	u, err := url.Parse(p.CardDAVURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("web: bad CardDAV URL %q", p.CardDAVURL)
	}
	ssl := u.Scheme == "https"
	host := u.Hostname()
	port := 443
	if !ssl {
		port = 80
	}
	if ps := u.Port(); ps != "" {
		if port, err = strconv.Atoi(ps); err != nil {
			return nil, fmt.Errorf("web: bad port in %q", p.CardDAVURL)
		}
	}
	desc := p.Description
	if desc == "" {
		desc = "Microsoft contacts"
	}
	// Reverse-DNS identifiers stable per host and user.
	rev := reverseDNS(host)
	ident := "org.contactsdav." + rev + "." + strings.ToLower(p.User)
	principal, _ := url.Parse(PrincipalURL(p.CardDAVURL, p.User))

	account := pdict{
		{"CardDAVAccountDescription", desc},
		{"CardDAVHostName", host},
		{"CardDAVPort", port},
		{"CardDAVPrincipalURL", principal.EscapedPath()},
		{"CardDAVUseSSL", ssl},
		{"CardDAVUsername", p.User},
	}
	if p.Password != "" {
		account = append(account, pentry{"CardDAVPassword", p.Password})
	}
	account = append(account,
		pentry{"PayloadDescription", "Configures the CardDAV account " + p.User},
		pentry{"PayloadDisplayName", desc},
		pentry{"PayloadIdentifier", ident + ".carddav"},
		pentry{"PayloadType", "com.apple.carddav.account"},
		pentry{"PayloadUUID", uuidFor(ident + ".carddav")},
		pentry{"PayloadVersion", 1},
	)
	payloads := []pdict{account}
	if len(p.CAPEM) > 0 {
		blk, _ := pem.Decode(p.CAPEM)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("web: the CA is not a PEM certificate")
		}
		payloads = append(payloads, pdict{
			{"PayloadCertificateFileName", "contactsdav-CA.cer"},
			{"PayloadContent", blk.Bytes},
			{"PayloadDescription", "Trusts the certificate authority of the contactsdav server at " + host},
			{"PayloadDisplayName", "contactsdav local CA"},
			{"PayloadIdentifier", ident + ".ca"},
			{"PayloadType", "com.apple.security.root"},
			{"PayloadUUID", uuidFor(ident + ".ca")},
			{"PayloadVersion", 1},
		})
	}
	top := pdict{
		{"PayloadContent", payloads},
		{"PayloadDescription", "CardDAV access to the Microsoft contacts of " + p.User},
		{"PayloadDisplayName", desc + " (" + p.User + ")"},
		{"PayloadIdentifier", ident},
		{"PayloadOrganization", "contactsdav"},
		{"PayloadRemovalDisallowed", false},
		{"PayloadType", "Configuration"},
		{"PayloadUUID", uuidFor(ident)},
		{"PayloadVersion", 1},
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
`)
	writePlist(&b, top)
	b.WriteString("\n</plist>\n")
	return b.Bytes(), nil
}

func reverseDNS(host string) string {
	if ip := net.ParseIP(host); ip != nil {
		return strings.NewReplacer(".", "-", ":", "-").Replace(host)
	}
	parts := strings.Split(strings.ToLower(host), ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}
