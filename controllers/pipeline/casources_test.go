package pipeline

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPrivateKeysNeverEnterTheCache(t *testing.T) {
	g := NewWithT(t)
	in := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cacerts", Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"ca-key.pem":"c2VjcmV0"}}`},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Data: map[string][]byte{"ca-cert.pem": []byte("cert"), "ca-key.pem": []byte("secret"), "tls.key": []byte("secret"), "tls.crt": []byte("cert"), "crt.pem": []byte("cert"), "key.pem": []byte("secret")},
	}
	out, err := stripKeyMaterial(in)
	g.Expect(err).NotTo(HaveOccurred())
	s := out.(*corev1.Secret)
	g.Expect(s.Data).To(HaveLen(3))
	g.Expect(s.Data).To(HaveKey("ca-cert.pem"))
	g.Expect(s.Data).To(HaveKey("tls.crt"))
	g.Expect(s.Data).To(HaveKey("crt.pem"))
	g.Expect(s.Annotations).To(BeEmpty(), "last-applied-configuration would carry the keys again")
	g.Expect(s.ManagedFields).To(BeEmpty())
}
