package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"unique"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/meshguard/meshguard/internal/render"
)

// The manager's cache of its own generated objects holds their metadata and status only, and in
// place of the rest (the spec: the bulk of each object) a hash of it. Held whole, as unstructured
// maps, those objects were 40 % of the manager's heap at 1,000 profiles (docs/performance.md).
//
// Nothing is lost for drift: a reconcile compares the rendered object's body with the hash. Equal
// means the body in the API server is byte for byte (as canonical JSON) what render produces, so the
// cached metadata with the rendered body is the live object, and decide sees it as it would have
// seen the full one. Different (someone edited it, the profile changed, or the API server stores
// the body in another form) means the full object is read from the API server before deciding. A
// body that differs only in form and was found in sync at a resourceVersion is remembered
// (verifiedBodies), so it is read once, not at every reconcile.
//
// The status stays in the cache: Istio's binding conditions on ambient AuthorizationPolicies are
// read from it (notBound).

// cachedBodyHash is the top-level key that carries the body hash in a cached object. It exists only
// in the cache's copies: nothing meshguard writes is built from a cached object.
const cachedBodyHash = "meshguard.dev/cached-body-sha256"

var generatedKinds = func() map[schema.GroupKind]bool {
	m := map[schema.GroupKind]bool{}
	for _, gvk := range render.Kinds() {
		m[gvk.GroupKind()] = true
	}
	return m
}()

// StripGeneratedBodies is a cache transform: an unstructured object of a kind meshguard generates
// keeps apiVersion, kind, metadata and status, and the hash of everything else in place of it.
// Other objects pass unchanged. It is idempotent (client-go may hand it an object it transformed).
func StripGeneratedBodies(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || !generatedKinds[u.GroupVersionKind().GroupKind()] {
		return obj, nil
	}
	if _, done := u.Object[cachedBodyHash]; done {
		return u, nil
	}
	h := bodyHash(u.Object)
	out := make(map[string]any, 5)
	for k, v := range u.Object {
		if envelope(k) {
			out[intern(k)] = compact(v, k == "metadata")
		}
	}
	// Neither is read from the cache (the API server's answer is used where they matter), and
	// without them metadata fits Go's smallest map.
	if m, ok := out["metadata"].(map[string]any); ok {
		delete(m, "creationTimestamp")
		delete(m, "generation")
	}
	out[cachedBodyHash] = h
	u.Object = out
	return u, nil
}

// compact copies a decoded JSON value into maps of the exact size, with their keys (the same few
// dozen in every object: "metadata", "labels", "app.kubernetes.io/managed-by", ...) shared
// instead of allocated again for each of thousands of objects. Values are shared too where they
// repeat across objects (labels, owner references); identifiers such as uid and resourceVersion
// are kept as they are.
func compact(v any, shareValues bool) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			share := shareValues && k != "uid" && k != "resourceVersion" && k != "name" && k != "annotations"
			out[intern(k)] = compact(e, share)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = compact(e, shareValues)
		}
		return out
	case string:
		if shareValues {
			return intern(x)
		}
		return x
	}
	return v
}

// intern returns the one shared copy of s (unique keeps it while any copy is in use).
func intern(s string) string { return unique.Make(s).Value() }

// ChainTransforms applies each transform in turn.
func ChainTransforms(fs ...toolscache.TransformFunc) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		var err error
		for _, f := range fs {
			if obj, err = f(obj); err != nil {
				return nil, err
			}
		}
		return obj, nil
	}
}

// envelope is what a cached generated object keeps: drift.Compare reads of the metadata only
// labels, annotations and owner references, and never the status.
func envelope(key string) bool {
	switch key {
	case "apiVersion", "kind", "metadata", "status", cachedBodyHash:
		return true
	}
	return false
}

// bodyHash hashes everything of an object but its envelope. encoding/json writes map keys sorted,
// so equal bodies hash alike whatever order they were built in.
func bodyHash(obj map[string]any) string {
	body := make(map[string]any, len(obj))
	for k, v := range obj {
		if !envelope(k) {
			body[k] = v
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "unhashable: " + err.Error() // never equal to a real hash: the object is read
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// stripped says whether o came from the cache without its body.
func stripped(o *unstructured.Unstructured) bool {
	_, ok := o.Object[cachedBodyHash]
	return ok
}

// withBody returns the live object a stripped cached one stands for, when the cache proves that
// its body is want's: the hashes are equal, or verified says that this resourceVersion was found in
// sync with this rendering. Otherwise nil: the full object must be read.
func withBody(cached, want *unstructured.Unstructured, verified *verifiedBodies) *unstructured.Unstructured {
	h, _ := cached.Object[cachedBodyHash].(string)
	if h != bodyHash(want.Object) && !verified.holds(cached, want) {
		return nil
	}
	live := &unstructured.Unstructured{Object: make(map[string]any, len(want.Object)+2)}
	for k, v := range want.Object {
		if !envelope(k) {
			live.Object[k] = v
		}
	}
	for k, v := range cached.Object {
		if envelope(k) && k != cachedBodyHash {
			live.Object[k] = v
		}
	}
	return live
}

// verifiedBodies remembers, per generated object, the resourceVersion at which meshguard last
// wrote it or read it whole and found it in sync, and the rendering (its rendered-hash) it was in
// sync with. An object whose body the API server stores in another form than render writes it
// (defaults, number formats) is then read once per change, not at every reconcile. Memory only: a
// restart reads such objects once again.
type verifiedBodies struct {
	m sync.Map // kind/namespace/name → verifiedBody
}

type verifiedBody struct{ resourceVersion, rendered string }

// store records that o, as the API server returned it, is in sync with want.
func (v *verifiedBodies) store(o, want *unstructured.Unstructured) {
	if v == nil || o.GetResourceVersion() == "" {
		return
	}
	v.m.Store(echoKey(want), verifiedBody{o.GetResourceVersion(), want.GetAnnotations()[AnnotationRenderedHash]})
}

// holds says whether cached is unchanged since it was found in sync with want's rendering.
func (v *verifiedBodies) holds(cached, want *unstructured.Unstructured) bool {
	if v == nil {
		return false
	}
	got, ok := v.m.Load(echoKey(want))
	return ok && got.(verifiedBody) == verifiedBody{cached.GetResourceVersion(), want.GetAnnotations()[AnnotationRenderedHash]}
}

// forget drops what is known of want's object (it was deleted, or found out of sync).
func (v *verifiedBodies) forget(want *unstructured.Unstructured) {
	if v != nil {
		v.m.Delete(echoKey(want))
	}
}

// BodyHash is the hash the cache keeps of o's body (everything but apiVersion, kind, metadata and
// status): equal for the rendered object and the stored one when the API server stores the body
// exactly as render writes it (test/integration/storedform).
func BodyHash(o *unstructured.Unstructured) string { return bodyHash(o.Object) }
