package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/expectations"
	"github.com/meshguard/meshguard/internal/explain"
)

// observeExpectations answers the profile's expectations against the live policies the reconcile
// already listed (live, from observeExternal) and the Namespaces of the profile and the sources
// (their labels for namespaceSelectors, Linkerd's default-inbound-policy annotation). The
// evaluation itself is pure (internal/expectations); this step only adds the Namespaces.
func (r *MeshSecurityProfileReconciler) observeExpectations(ctx context.Context, p *v1alpha1.MeshSecurityProfile, live *livePolicies) ([]v1alpha1.ExpectationStatus, error) {
	if len(p.Spec.Expectations) == 0 || live == nil {
		return nil, nil
	}
	objs := append([]*unstructured.Unstructured{}, live.objects...)
	for _, name := range append([]string{p.Namespace}, expectations.SourceNamespaces(p)...) {
		ns := &corev1.Namespace{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Name: name}, ns)
		if client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("get Namespace %s: %w", name, err)
		}
		if err != nil {
			// A source namespace that does not exist (yet) has only its name label.
			continue
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ns)
		if err != nil {
			return nil, fmt.Errorf("convert Namespace %s: %w", name, err)
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		objs = append(objs, u)
	}
	return expectations.Evaluate(p, objs, expectations.Options{
		Engine: explain.Options{Facts: r.RenderOptions},
		Origin: func(kind, ns, name string) string {
			if m, ok := live.origin[refKey(kind, ns, name)]; ok {
				return m
			}
			return expectations.ForeignMark
		},
	}), nil
}
