// Package drift compares an object meshguard rendered with the object that is live in the
// cluster, field by field, and says what differs in words a user can read
// ("spec.mtls.mode: STRICT → PERMISSIVE").
//
// The comparison is exact for the object's content (spec and every other top-level field except
// metadata and status) because render writes every field the API server would default; for
// metadata only what meshguard sets is compared (its labels and annotations and its controller
// ownerReference), so labels, annotations and status written by others are never drift.
package drift
