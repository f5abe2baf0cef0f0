package certs_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

func TestNextCheck(t *testing.T) {
	anchor := root(t, "anchor", validity(-365*day, 3650*day))
	tests := []struct {
		name          string
		anchor        *certstest.Cert
		issuer        certstest.Option
		minValidity   time.Duration
		wantNextCheck time.Time // zero: none
	}{
		{
			name:          "a valid issuer is next checked when its remaining validity reaches the minimum",
			anchor:        anchor,
			issuer:        validity(-day, 200*day),
			minValidity:   minValidity,
			wantNextCheck: now.Add(140 * day),
		},
		{
			name:          "an issuer already expiring soon is next checked when it expires",
			anchor:        anchor,
			issuer:        validity(-day, 10*day),
			minValidity:   minValidity,
			wantNextCheck: now.Add(10 * day),
		},
		{
			name:          "an issuer that is not yet valid is next checked when it becomes valid",
			anchor:        anchor,
			issuer:        validity(2*time.Hour, 300*day),
			minValidity:   minValidity,
			wantNextCheck: now.Add(2 * time.Hour),
		},
		{
			name:          "the earliest threshold of all certificates wins",
			anchor:        root(t, "anchor", validity(-365*day, 90*day)),
			issuer:        validity(-day, 80*day),
			minValidity:   minValidity,
			wantNextCheck: now.Add(20 * day),
		},
		{
			name:          "a certificate whose remaining validity is exactly the minimum is expiring soon and next checked when it expires",
			anchor:        anchor,
			issuer:        validity(-day, minValidity),
			minValidity:   minValidity,
			wantNextCheck: now.Add(minValidity),
		},
		{
			name:          "a zero minimum validity makes the expiry the only threshold",
			anchor:        anchor,
			issuer:        validity(-day, 200*day),
			minValidity:   0,
			wantNextCheck: now.Add(200 * day),
		},
		{
			name:          "expired certificates have no next check",
			anchor:        root(t, "anchor", validity(-365*day, -2*day)),
			issuer:        validity(-300*day, -day),
			minValidity:   minValidity,
			wantNextCheck: time.Time{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			trust := trustRoots(tt.anchor)
			issuer := issuerSecret(signed(t, tt.anchor, "identity", tt.issuer))
			check := func(at time.Time) certs.Report { return certs.CheckLinkerd(trust, issuer, at, tt.minValidity) }

			rep := check(now)

			g.Expect(rep.NextCheck).To(Equal(tt.wantNextCheck))
			if tt.wantNextCheck.IsZero() {
				return
			}
			// Nothing changes before NextCheck, something changes at it.
			g.Expect(states(check(rep.NextCheck.Add(-time.Nanosecond)))).To(Equal(states(rep)))
			g.Expect(states(check(rep.NextCheck))).NotTo(Equal(states(rep)))
		})
	}
}

func states(rep certs.Report) []string {
	var out []string
	for _, c := range rep.Certificates {
		out = append(out, c.State)
	}
	return out
}

func TestReportFields(t *testing.T) {
	g := NewWithT(t)
	anchor := root(t, "root.linkerd.cluster.local")
	issuer := signed(t, anchor, "identity.linkerd.cluster.local", validity(-day, 100*day))

	rep := certs.CheckLinkerd(trustRoots(anchor), issuerSecret(issuer), now, minValidity)

	g.Expect(rep.Certificates).To(HaveLen(2))
	got := rep.Certificates[1]
	g.Expect(got.Subject).To(Equal("CN=identity.linkerd.cluster.local,O=meshguard test"))
	g.Expect(got.SerialNumber).To(Equal(issuer.Certificate.SerialNumber.Text(16)))
	g.Expect(got.Fingerprint).To(MatchRegexp("^[0-9a-f]{64}$"))
	g.Expect(got.Fingerprint).NotTo(Equal(rep.Certificates[0].Fingerprint))
	g.Expect(got.NotBefore.Time).To(BeTemporally("==", now.Add(-day)))
	g.Expect(got.NotAfter.Time).To(BeTemporally("==", now.Add(100*day)))
	g.Expect(got.Message).To(Equal("is valid until 2026-06-09T12:00:00Z"))
	g.Expect(rep.NearestExpiry).To(BeTemporally("==", now.Add(100*day)))
}

func TestRowsAreSortedWhateverTheInputOrder(t *testing.T) {
	g := NewWithT(t)
	a := root(t, "anchor a", validity(-day, 900*day))
	b := root(t, "anchor b", validity(-day, 900*day)) // same notAfter: the fingerprint decides
	c := root(t, "anchor c", validity(-day, 800*day))
	issuer := issuerSecret(signed(t, a, "identity"))

	first := certs.CheckLinkerd(trustRoots(a, b, c), issuer, now, minValidity)
	second := certs.CheckLinkerd(trustRoots(c, b, a), issuer, now, minValidity)

	g.Expect(second).To(Equal(first))
	g.Expect(first.Certificates[0].Subject).To(HavePrefix("CN=anchor c"))
}

func TestMessageListsAtMostThreeProblems(t *testing.T) {
	g := NewWithT(t)
	var expired []*certstest.Cert
	for range 5 {
		expired = append(expired, root(t, "old anchor", validity(-400*day, -day)))
	}

	rep := certs.CheckLinkerd(trustRoots(expired...), absent("Secret", "linkerd", certs.LinkerdIssuerSecret), now, minValidity)

	g.Expect(rep.Reason).To(Equal(v1alpha1.ReasonCertNotFound))
	g.Expect(rep.Message).To(HavePrefix("Issuer Secret linkerd/linkerd-identity-issuer does not exist; TrustAnchor "))
	g.Expect(rep.Message).To(HaveSuffix("; and 3 more certificates"))
}

func TestWorst(t *testing.T) {
	tests := []struct {
		name    string
		reasons []string
		want    string
	}{
		{"no reason is Valid", nil, v1alpha1.ReasonCertValid},
		{"NotFound is worse than Unreadable", []string{v1alpha1.ReasonCertUnreadable, v1alpha1.ReasonCertNotFound}, v1alpha1.ReasonCertNotFound},
		{"Unreadable is worse than Expired", []string{v1alpha1.ReasonCertExpired, v1alpha1.ReasonCertUnreadable}, v1alpha1.ReasonCertUnreadable},
		{"Expired is worse than NotYetValid", []string{v1alpha1.ReasonCertNotYetValid, v1alpha1.ReasonCertExpired}, v1alpha1.ReasonCertExpired},
		{"NotYetValid is worse than UntrustedChain", []string{v1alpha1.ReasonCertUntrustedChain, v1alpha1.ReasonCertNotYetValid}, v1alpha1.ReasonCertNotYetValid},
		{"UntrustedChain is worse than RootMismatch", []string{v1alpha1.ReasonCertRootMismatch, v1alpha1.ReasonCertUntrustedChain}, v1alpha1.ReasonCertUntrustedChain},
		{"RootMismatch is worse than UnsupportedAlgorithm", []string{v1alpha1.ReasonCertUnsupported, v1alpha1.ReasonCertRootMismatch}, v1alpha1.ReasonCertRootMismatch},
		{"UnsupportedAlgorithm is worse than ExpiringSoon", []string{v1alpha1.ReasonCertExpiringSoon, v1alpha1.ReasonCertUnsupported}, v1alpha1.ReasonCertUnsupported},
		{"ExpiringSoon is worse than Valid", []string{v1alpha1.ReasonCertValid, v1alpha1.ReasonCertExpiringSoon}, v1alpha1.ReasonCertExpiringSoon},
		{"an unknown reason is the worst of all", []string{v1alpha1.ReasonCertNotFound, "Bogus"}, "Bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(certs.Worst(tt.reasons...)).To(Equal(tt.want))
		})
	}
}

func TestIsBlocking(t *testing.T) {
	tests := []struct {
		reason string
		want   bool
	}{
		{v1alpha1.ReasonCertValid, false},
		{v1alpha1.ReasonCertExpiringSoon, false},
		{v1alpha1.ReasonCertExpired, true},
		{v1alpha1.ReasonCertNotYetValid, true},
		{v1alpha1.ReasonCertUntrustedChain, true},
		{v1alpha1.ReasonCertRootMismatch, true},
		{v1alpha1.ReasonCertUnsupported, true},
		{v1alpha1.ReasonCertUnreadable, true},
		{v1alpha1.ReasonCertNotFound, true},
	}
	for _, tt := range tests {
		name := tt.reason + " does not block Ready"
		if tt.want {
			name = tt.reason + " blocks Ready"
		}
		t.Run(name, func(t *testing.T) {
			NewWithT(t).Expect(certs.IsBlocking(tt.reason)).To(Equal(tt.want))
		})
	}
}

func TestSourceDescribe(t *testing.T) {
	g := NewWithT(t)
	src := configMap("istio-system", certs.IstioRootConfigMap, nil)

	g.Expect(src.Describe(certs.IstioRootConfigMapKey)).To(Equal("ConfigMap istio-system/istio-ca-root-cert[root-cert.pem]"))
	g.Expect(src.String()).To(Equal("ConfigMap istio-system/istio-ca-root-cert"))
}
