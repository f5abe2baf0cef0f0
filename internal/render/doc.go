// Package render turns a MeshSecurityProfile into the objects the mesh needs: pure functions with
// no client, no context and no clock. The same input always gives the same output, sorted.
//
// Render is the only place where the security semantics of a profile are decided; the controller
// applies what it returns and nothing else, and `manager render` prints it.
package render
