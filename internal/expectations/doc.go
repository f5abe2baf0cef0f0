// Package expectations answers a MeshSecurityProfile's spec.expectations against a set of policy
// objects and summarises the answers as the ExpectationsMet condition.
//
// It is pure (no client, no clock) so that the controller (against the live policies of the
// namespace) and `manager explain --expectations` (against a profile's render and other files)
// give the same answers. The decisions come from internal/explain; this package converts the
// API's expectations into its requests, names the deciding objects (those the profile did not
// generate first, marked foreign) and picks the condition's status, reason and message.
package expectations
