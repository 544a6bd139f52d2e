// Package carddav is the HTTP front of the gateway: a CardDAV server (RFC
// 6352) with WebDAV sync (RFC 6578) for real clients (iOS/macOS Contacts,
// Thunderbird, DAVx5): sync-collection, sync-token and CS:getctag, reports and
// privileges, PROPPATCH, created-vs-updated PUT statuses, conditional DELETE,
// Basic authentication and discovery through /.well-known/carddav.
//
// It speaks go-webdav's vocabulary (webdav.ConditionalMatch, errors from
// webdav.NewHTTPError) and is tested with go-webdav's CardDAV client, but
// serves every method itself: go-webdav v0.7.0's Handler has no hook for
// extra properties or reports, hides the raw PUT body, always answers 201,
// drops If-Match on DELETE and writes a malformed PROPPATCH 207 (see
// /work/shared/research/clients.md §4).
//
// Choices where the RFCs or clients leave room:
//   - /.well-known/carddav answers 301: to the principal when the request
//     carries valid credentials, else to "/", which then challenges.
//   - OPTIONS is answered without credentials, from the path's shape alone.
//   - PROPFIND with Depth: infinity, or without Depth, is answered as
//     Depth: 1. REPORT ignores Depth; sync-level infinite is answered as 1.
//   - vCard 3.0 is served unless 4.0 is asked for (address-data
//     version="4.0", Accept: text/vcard;version=4.0): macOS rejects 4.0.
//   - An unknown sync token is 403 with DAV:valid-sync-token, but 400 for
//     Thunderbird, which recovers from nothing else.
//   - PUT without Content-Type is taken as a vCard; other types are 415, a
//     body past MaxResourceSize is 413, both with their CARDDAV condition;
//     a PUT into a missing book is 409.
//   - CS:me-card on the home set is kept in memory per user.
//
// It knows nothing of Microsoft Graph: a user's data comes from a Backend.
package carddav
