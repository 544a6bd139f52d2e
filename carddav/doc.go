// Package carddav is the HTTP front of the gateway: a CardDAV server (RFC
// 6352) with WebDAV sync (RFC 6578), built on github.com/emersion/go-webdav
// and completed where it falls short for real clients (iOS/macOS Contacts,
// Thunderbird, DAVx5): sync-collection, sync-token and CS:getctag, reports and
// privileges, PROPPATCH, created-vs-updated PUT statuses, conditional DELETE,
// Basic authentication and discovery through /.well-known/carddav.
//
// It knows nothing of Microsoft Graph: a user's data comes from a Backend.
package carddav
