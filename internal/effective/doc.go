// Package effective finds the objects in the cluster that meshguard does not own but that weaken
// a MeshSecurityProfile, and says in words a user can read what each one weakens ("mtls.mode
// Strict: PERMISSIVE for pods app=legacy"). It only reports: nothing here modifies or deletes
// anything, and it has no client, context or clock.
//
// The judgement follows how the mesh and Kubernetes combine policies:
//
//   - PeerAuthentication (Istio): workload policy > namespace policy > mesh policy, and among
//     several policies of one level Istio applies the oldest. A namespace-wide policy of someone
//     else competes with meshguard's, so it weakens the profile whenever its mode is weaker,
//     whatever its age. A workload policy weakens when its mode, or the mode of one of its ports,
//     is weaker than what the profile wants for those workloads (the profile's own override for
//     them, else the namespace mode). A mode that is not set inherits. Mesh-wide policies never
//     override meshguard's namespace policy, and Istio ignores workload policies in the root
//     namespace.
//   - AuthorizationPolicy (Istio): CUSTOM, DENY and ALLOW are evaluated in that order; CUSTOM and
//     DENY can only reject and AUDIT decides nothing, so only ALLOW policies with rules can admit
//     more: anything, under authorization.defaultDeny; without it, more than a profile Allow rule
//     on the workloads that rule restricts (ALLOW policies are ORed). Policies in the Istio root
//     namespace apply to every namespace. A rule the profile itself declares for the same
//     workloads is not reported.
//   - NetworkPolicy: policies are a union, so any rule another policy adds opens traffic in a
//     direction the profile denies by default, unless the profile itself allows that traffic.
//   - Server (Linkerd): one Server per pod port; a foreign Server that may select a pod port of a
//     Server of the profile competes with it, whatever its accessPolicy.
//
// A Linkerd profile is judged on NetworkPolicies and Servers.
//
// Mesh objects are decoded strictly through internal/meshapi (Istio's upstream types, Linkerd's
// types of its CRD schemas). A foreign object that does not decode (a field meshguard does not
// know, such as a newer mesh version's) may weaken the profile in a way it cannot judge, so it is
// reported with the field, never ignored.
package effective
