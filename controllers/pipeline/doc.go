// Package pipeline is what meshguard's reconcilers share: the apply → prune → observe → requeue
// pipeline (Pipeline.Run) over an owner (ProfileOwner, FloorOwner), the per-object decision of what
// apply writes (decide.go), the caches and memories behind it (installed kinds, foreign objects,
// fights, meshguard's own writes, certificate verdicts, the data plane facts), and the status
// computation from an Observation (a profile's, pure, and a cluster profile's summary). One
// Pipeline per manager, built by the profiles' reconciler (profile.Reconciler.SharedPipeline) and
// handed to the floors' (floor.Setup); it holds no reconciler's fields.
package pipeline
