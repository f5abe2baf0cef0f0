package certs_test

import (
	"testing"
	"time"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

// now is the fixed instant the tests judge certificates at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	day         = 24 * time.Hour
	minValidity = 60 * day // linkerd check's default, 1440h
)

// mint mints a certificate or fails the test.
func mint(t testing.TB, opts ...certstest.Option) *certstest.Cert {
	t.Helper()
	c, err := certstest.Mint(opts...)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return c
}

// root mints a self-signed root valid from a year before now for five years.
func root(t testing.TB, cn string, opts ...certstest.Option) *certstest.Cert {
	t.Helper()
	return mint(t, append([]certstest.Option{
		certstest.WithSubject(cn),
		certstest.WithValidity(now.Add(-365*day), now.Add(5*365*day)),
	}, opts...)...)
}

// signed mints a CA certificate signed by parent, valid from 30 days before now for a year.
func signed(t testing.TB, parent *certstest.Cert, cn string, opts ...certstest.Option) *certstest.Cert {
	t.Helper()
	return mint(t, append([]certstest.Option{
		certstest.WithSubject(cn),
		certstest.SignedBy(parent),
		certstest.WithValidity(now.Add(-30*day), now.Add(335*day)),
	}, opts...)...)
}

// validity is the WithValidity option relative to now.
func validity(fromNow, untilNow time.Duration) certstest.Option {
	return certstest.WithValidity(now.Add(fromNow), now.Add(untilNow))
}

func configMap(ns, name string, data map[string][]byte) certs.Source {
	return certs.Source{Kind: "ConfigMap", Namespace: ns, Name: name, Data: data, Found: true}
}

func secret(ns, name string, data map[string][]byte) certs.Source {
	return certs.Source{Kind: "Secret", Namespace: ns, Name: name, Data: data, Found: true}
}

func absent(kind, ns, name string) certs.Source {
	return certs.Source{Kind: kind, Namespace: ns, Name: name}
}

// row is what the tables expect of a certificate status.
type row struct {
	Source string
	Role   v1alpha1.CertificateRole
	State  string
}

func rowsOf(rep certs.Report) []row {
	out := make([]row, 0, len(rep.Certificates))
	for _, c := range rep.Certificates {
		out = append(out, row{Source: c.Source, Role: c.Role, State: c.State})
	}
	return out
}
