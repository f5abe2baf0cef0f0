package v1alpha1

// ExpectedDecision is what a platform team wants to happen to a request.
// +kubebuilder:validation:Enum=Allowed;Denied
type ExpectedDecision string

const (
	// ExpectAllowed means the request must get through every layer.
	ExpectAllowed ExpectedDecision = "Allowed"
	// ExpectDenied means some layer must stop the request.
	ExpectDenied ExpectedDecision = "Denied"
)

// ObservedDecision is meshguard's answer for an expectation's request.
// +kubebuilder:validation:Enum=Allowed;Denied;Unknown
type ObservedDecision string

const (
	// DecisionAllowed means every layer lets the request through.
	DecisionAllowed ObservedDecision = "Allowed"
	// DecisionDenied means a layer stops the request.
	DecisionDenied ObservedDecision = "Denied"
	// DecisionUnknown means no layer denies, but one depends on something meshguard does not model or
	// was not told (named in the message). It never meets an expectation.
	DecisionUnknown ObservedDecision = "Unknown"
)

// Expectation is a request the platform team wants Allowed or Denied, checked against the live
// policies of the profile's namespace (the profile's own and anyone else's) on every reconcile.
// The answer is reported in status.expectations and the ExpectationsMet condition.
type Expectation struct {
	// name identifies the expectation in status and in the ExpectationsMet condition.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// from is the sender: exactly one of serviceAccount, namespace or ipBlock.
	// +required
	From ExpectationSource `json:"from"`

	// to is a pod of the profile's namespace and, for an HTTP request, the method and path.
	// +required
	To ExpectationTarget `json:"to"`

	// want is Allowed (the request must get through every layer) or Denied (some layer must stop
	// it). An answer meshguard cannot determine never meets an expectation.
	// +required
	Want ExpectedDecision `json:"want"`
}

// ExpectationSource is the sender of an expectation's request: a pod named by its service account
// (its mesh identity), a pod of a namespace, or an address outside the cluster's pods.
// +kubebuilder:validation:XValidation:rule="[has(self.serviceAccount), has(self.namespace), has(self.ipBlock)].filter(x, x).size() == 1",message="from needs exactly one of serviceAccount, namespace or ipBlock"
// +kubebuilder:validation:XValidation:rule="!has(self.ipBlock) || !has(self.podLabels)",message="from.podLabels cannot be combined with ipBlock: an address outside the cluster has no pod labels"
// +kubebuilder:validation:XValidation:rule="!has(self.podLabels) || self.podLabels.all(k, size(k) <= 317 && size(self.podLabels[k]) <= 63)",message="podLabels keys must be at most 317 characters and values at most 63",fieldPath=".podLabels"
type ExpectationSource struct {
	// serviceAccount is the sending pod's service account, written namespace/name, for example
	// frontend/web. It is the sender's mesh identity. Add podLabels when NetworkPolicies select
	// the sender by label: without them such a policy makes the answer Unknown.
	// +optional
	ServiceAccount ServiceAccountRef `json:"serviceAccount,omitempty"`

	// namespace is the sending pod's namespace, when its service account does not matter. Its mesh
	// identity is then unknown, so a rule on service accounts makes the answer Unknown.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// podLabels are the sending pod's labels (with serviceAccount or namespace). When omitted with
	// namespace: a pod without labels; with serviceAccount: not known.
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	PodLabels map[string]string `json:"podLabels,omitempty"`

	// ipBlock is an address outside the cluster's pods (no mesh proxy, no identity), written as an
	// address or a CIDR. A CIDR is judged for every piece of it that a policy distinguishes (split
	// at every CIDR boundary the policies draw in it), worst case: "nothing from 0.0.0.0/0" holds
	// only when no piece gets through.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self) || isCIDR(self)",message="from.ipBlock must be an IP address or a CIDR such as 203.0.113.0/24"
	// +optional
	IPBlock string `json:"ipBlock,omitempty"`

	// unmeshed says the sending pod has no mesh proxy: it sends plaintext, without a mesh
	// identity. When false, want: Denied is checked for the sender with a proxy and for the same
	// sender without one (whether a pod runs a proxy, or speaks plaintext, is the sender's
	// choice), and holds only when both are denied; want: Allowed is checked for the sender with
	// a proxy.
	// +optional
	Unmeshed bool `json:"unmeshed,omitempty"`
}

// ExpectationTarget is the receiving pod of the profile's namespace and what the request asks.
// +kubebuilder:validation:XValidation:rule="self.podLabels.all(k, size(k) <= 317 && size(self.podLabels[k]) <= 63)",message="podLabels keys must be at most 317 characters and values at most 63",fieldPath=".podLabels"
type ExpectationTarget struct {
	// podLabels are the receiving pod's labels, as the pods carry them (selectors of every layer
	// look at them); {} is a pod without labels.
	// +kubebuilder:validation:MaxProperties=16
	// +required
	PodLabels map[string]string `json:"podLabels"`

	// port is the pod's (container) port, not a Service port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// method makes the request HTTP with this method, for example GET. Without method and path the
	// request is a plain TCP connection.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[A-Z]+$`
	// +optional
	Method string `json:"method,omitempty"`

	// path makes the request HTTP with this path, for example /api/items (no query string).
	// The request carries no JWT.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	// +optional
	Path string `json:"path,omitempty"`
}

// ExpectationStatus is an expectation's answer against the live policies.
type ExpectationStatus struct {
	// name of the expectation.
	Name string `json:"name"`
	// want is what the expectation wants.
	Want ExpectedDecision `json:"want"`
	// got is meshguard's answer: Allowed, Denied, or Unknown when it depends on something not
	// modelled or not known (message says what).
	Got ObservedDecision `json:"got"`
	// met is true when got equals want. Unknown is never met.
	Met bool `json:"met"`
	// layer is the layer that decided: the first that denies for Denied, the first undetermined
	// for Unknown; for Allowed, the layer of the first object that allows it (a foreign one first).
	// +optional
	Layer string `json:"layer,omitempty"`
	// decidedBy are the deciding objects, Kind namespace/name[rule index]; objects meshguard did
	// not generate for this profile come first and are marked "(foreign)".
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	DecidedBy []string `json:"decidedBy,omitempty"`
	// reason is DeniedOnlyBySource when only the sender's own egress NetworkPolicy, in another
	// namespace, denies the request: the sender can delete it, so it does not meet want: Denied
	// (got is then the answer of the destination's side).
	// +optional
	Reason string `json:"reason,omitempty"`
	// message explains the answer in a sentence.
	// +optional
	Message string `json:"message,omitempty"`
}

// ExpectationReasonDeniedOnlyBySource is status.expectations[].reason when only the sender's own
// egress NetworkPolicy, in another namespace, denies the request.
const ExpectationReasonDeniedOnlyBySource = "DeniedOnlyBySource"
