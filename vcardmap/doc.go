// Package vcardmap converts between vCard (RFC 2426 3.0, RFC 6350 4.0; 2.1
// leftovers tolerated on input) and the Microsoft Graph v1.0 contact
// resource, losslessly: what Graph cannot hold travels in Extras, which the
// backend stores beside the contact (single-value extended properties) and
// hands back to Render. It does no I/O and keeps its own content-line reader
// and writer (go-vcard neither folds nor escapes correctly; clients.md §5).
//
// # Mapping
//
//	vCard (3.0 / 4.0)                            Graph contact
//	N  sur;given;middle;prefix;suffix            surname, givenName, middleName, title, generation
//	FN                                           displayName
//	NICKNAME (list; joined/split on ",")         nickName
//	X-MS-INITIALS / X-MS-OFFICE                  initials / officeLocation
//	X-MS-FILEAS (X-EVOLUTION-FILE-AS accepted)   fileAs
//	ORG company;department                       companyName, department
//	TITLE / ROLE                                 jobTitle / profession
//	X-PHONETIC-FIRST-NAME / -LAST-NAME / -ORG    yomiGivenName / yomiSurname / yomiCompanyName
//	    (also RFC 9554 N;PHONETIC=… sur;given and ORG;PHONETIC=…; SORT-AS stays a parameter)
//	EMAIL (first 3, in order)                    emailAddresses[].address (X-MS-NAME param: .name)
//	TEL cell|iphone|mobile (first)               mobilePhone
//	TEL work|voice|untyped (first 2)             businessPhones
//	TEL home (first 2)                           homePhones
//	TEL fax|pager|car|isdn|other|main|x-…, more  Extras
//	    (Apple item labels count as types: _$!<Mobile>!$_ = cell, _$!<HomeFAX>!$_ = extra …)
//	ADR work / home / other or untyped (first)   businessAddress / homeAddress / otherAddress
//	    street list elements joined with "\n"; PO box and extended address kept via the template
//	BDAY date (YYYY-MM-DD, YYYYMMDD, --MMDD)     birthday "YYYY-MM-DDT11:59:00Z"; read as the
//	    nearest UTC day; no year = 1604 (3.0: X-APPLE-OMIT-YEAR=1604, 4.0: --MMDD)
//	NOTE                                         personalNotes (X-MS-NEWLINE=CRLF marks CRLF notes)
//	CATEGORIES (list)                            categories
//	URL work or untyped (first)                  businessHomePage
//	IMPP, X-AIM, X-JABBER, X-MSN, X-ICQ,         imAddresses (first 3, value verbatim;
//	    X-SKYPE, X-YAHOO, X-MS-IMADDRESS, …          the property name/params kept via template)
//	X-ABRELATEDNAMES + X-ABLabel _$!<Manager>!$_  manager, assistantName, spouseName, children
//	    (_$!<Assistant>!$_, _$!<Spouse>!$_, _$!<Child>!$_); 4.0 RELATED;TYPE=x-manager|
//	    x-assistant|spouse|child;VALUE=text; X-MS-MANAGER/-ASSISTANT/-SPOUSE/-CHILD and
//	    X-EVOLUTION-MANAGER/-ASSISTANT/-SPOUSE accepted (the name written is kept)
//	PHOTO inline (3.0 ENCODING=b;TYPE=JPEG,      Mapped.Photo (remote URIs are not fetched:
//	    4.0 data: URI, 2.1 BASE64)                   the property stays in Extras)
//	KIND / X-ADDRESSBOOKSERVER-KIND,             Mapped.Kind / Mapped.Members, and Extras
//	    MEMBER / X-ADDRESSBOOKSERVER-MEMBER
//	UID                                          Mapped.UID, verbatim
//	PRODID, REV, VERSION                         dropped; rewritten by Render
//	anything else                                Extras
//
// Group cards (Apple's X-ADDRESSBOOKSERVER-KIND:group, DAVx5's 4.0
// KIND:group) become an ordinary Graph contact whose displayName is the
// group's FN; kind and members live in Extras and round-trip exactly, and
// Kind/Members expose them so the backend may project membership onto
// categories (DAVx5's CATEGORIES group mode needs nothing special: it is
// just CATEGORIES). Rendering in the other version swaps the Apple and 4.0
// property names.
//
// # Extras and the stale-extras rule
//
// Extras records, in card order, every property that is not a plain default
// rendering of its Graph value: extras verbatim, and for mapped properties a
// template (group, name, parameters; value from Graph) or, when Graph's value
// would not reproduce the client's bytes (PO box, \N escapes, a 6th ORG
// unit), the client's exact property. It also records a fingerprint of each
// slot's Graph value as written. Outlook edits win: on Render a template
// whose slot's fingerprint no longer matches Graph is dropped, together with
// every property of its itemN. group (its X-ABLabel, X-ABADR…) and the 3.0
// LABEL of a changed address, and Graph's value is rendered by default
// instead; a value deleted in Outlook is never resurrected. Extras that
// belong to no Graph field (a 4th email, a fax) always stay. See extras.go for the format.
//
// # Graph → vCard → Graph
//
// Every Graph field above survives Render then Parse unchanged, with these
// normalisations: a birthday comes back at 11:59 UTC of its day; an email
// name equal to its address comes back empty; CRLF and lone CR newlines
// come back as LF, except in a note whose newlines are all CRLF (marked
// X-MS-NEWLINE=CRLF and kept); C0 control characters other than tab are
// dropped.
//
// # Equivalence
//
// A card PUT by a client and rendered back in the same version is
// equivalent (see Equivalent): the same multiset of properties, each with
// the same group (case-insensitive), name (case-insensitive), parameters
// (names and values case-insensitive, order-free, comma lists flattened,
// TYPE=pref ≡ PREF, 2.1 bare types ≡ TYPE=) and value compared per kind:
// text unescaped; N, ADR, ORG per component with trailing empty components
// ignored; CATEGORIES and NICKNAME per element; inline PHOTO by decoded bytes
// and media type; BDAY by date. Property order, line folding, escaping
// style, parameter-name case, PRODID, REV and VERSION may differ, a UID
// present in only one of the cards (the server adds one) is ignored, and a
// property with an empty value counts as absent (Render always writes FN,
// and N in 3.0). Rendering in the other version converts what it knows how
// to (TYPE=pref ↔ PREF=1, Apple ↔ 4.0 group kinds, BDAY, PHOTO, TEL URIs,
// the mapped related names; 4.0-only ANNIVERSARY and text RELATED become
// Apple's labelled X-ABDATE / X-ABRELATEDNAMES in 3.0, and back in 4.0 where
// the label is Anniversary or an RFC 6350 RELATED type), keeps the rest
// verbatim, and maps to the same Graph contact, but is not held to
// equivalence.
package vcardmap
