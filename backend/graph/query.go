package graph

// Query holds the OData options of a read.
type Query struct {
	// Select lists the properties to return ($select); empty means all.
	Select []string
	// Expand lists single-value extended property ids to return, through
	// $expand=singleValueExtendedProperties($filter=id eq '…' or id eq '…').
	Expand []string
	// PageSize asks for pages of this size: $top on lists, Prefer:
	// odata.maxpagesize on delta. Zero leaves it to the client's default.
	PageSize int
}

// Patch is the body of a PATCH: omitted properties are kept, a nil value
// clears a property (JSON null), and a collection or address replaces the
// stored one whole.
type Patch map[string]any

// DeltaResult is one complete delta round of a folder: every page followed
// to the final @odata.deltaLink.
type DeltaResult struct {
	// Changed holds created or updated contacts, possibly partial (only the
	// selected properties and id).
	Changed []Contact
	// Removed holds the ids of @removed tombstones.
	Removed []string
	// DeltaLink starts the next round; it is opaque and replayed verbatim.
	DeltaLink string
}

// Photo is a contact photo's bytes and media type.
type Photo struct {
	ContentType string
	Data        []byte
}
