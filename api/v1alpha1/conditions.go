package v1alpha1

// Condition types written to status.conditions.
const (
	// ConditionReady summarises the profile: True only when every desired object is applied and in
	// sync, nothing outside meshguard weakens the profile, and no mesh CA certificate is expired,
	// untrusted or mismatched. A certificate that merely expires soon keeps Ready True.
	ConditionReady = "Ready"
	// ConditionPoliciesApplied is True when every generated object exists as rendered.
	ConditionPoliciesApplied = "PoliciesApplied"
	// ConditionInSync is True when no generated object differs from what meshguard applied.
	ConditionInSync = "InSync"
	// ConditionEffective is True when no object outside meshguard's ownership weakens the profile.
	ConditionEffective = "Effective"
	// ConditionCertificatesHealthy is True when every mesh CA certificate inspected is valid, trusted
	// and valid for at least spec.certificates.minValidity.
	ConditionCertificatesHealthy = "CertificatesHealthy"
	// ConditionExpectationsMet is True when every spec.expectations entry gets the answer it wants
	// against the live policies of the namespace; False when one gets the opposite answer (the
	// message names the first and the object that decides it); Unknown when none is contradicted
	// but one cannot be determined, or the policies could not be read. Present only when the
	// profile has expectations. Anything but True makes Ready False: an expectation that cannot be
	// confirmed is not a namespace protected as declared (fail closed).
	ConditionExpectationsMet = "ExpectationsMet"
	// ConditionReconciling is the kstatus abnormal-true condition: present and True only while
	// meshguard is still converging the profile.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is the kstatus abnormal-true condition: present and True only while the
	// profile cannot make progress without a change from the user (invalid or unsatisfiable spec).
	ConditionStalled = "Stalled"
	// ConditionBaseline (MeshSecurityProfile) is True when the profile asks for at least the floor
	// of every ClusterMeshSecurityProfile selecting its namespace, or none does; False (reason
	// BelowBaseline) names the fields held at the floor and the cluster profile holding each. It does
	// not make Ready False: what is applied is at least as strict as both.
	ConditionBaseline = "Baseline"
)

// Condition reasons. Each is a CamelCase constant so that alerts and scripts can match on it.
const (
	// ReasonSucceeded: the step completed and everything is as declared.
	ReasonSucceeded = "Succeeded"
	// ReasonProgressing: meshguard is applying or waiting for objects.
	ReasonProgressing = "Progressing"
	// ReasonInvalidSpec: the spec cannot be rendered (it slipped past admission validation).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonApplyFailed: the API server refused one or more generated objects.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonConflict: an object with a generated object's name exists and is not owned by this profile.
	ReasonConflict = "Conflict"
	// ReasonProfileConflict: another, older MeshSecurityProfile governs this namespace.
	ReasonProfileConflict = "ProfileConflict"
	// ReasonIstioNotInstalled: the Istio security CRDs are not installed in the cluster.
	ReasonIstioNotInstalled = "IstioNotInstalled"
	// ReasonLinkerdNotInstalled: the Linkerd policy CRDs are not installed in the cluster, or are
	// too old to serve the versions meshguard writes (Server policy.linkerd.io/v1beta3: Linkerd 2.16+).
	ReasonLinkerdNotInstalled = "LinkerdNotInstalled"
	// ReasonUnsupportedByMesh: the profile asks for something the selected mesh cannot express.
	ReasonUnsupportedByMesh = "UnsupportedByMesh"
	// ReasonRestartRequired: the policy is applied, but running pods keep an older one until restarted.
	ReasonRestartRequired = "RestartRequired"
	// ReasonAuditOnly: enforcement is Audit, so meshguard computed and compared but wrote nothing.
	ReasonAuditOnly = "AuditOnly"
	// ReasonInSync: every generated object matches what meshguard applied.
	ReasonInSync = "InSync"
	// ReasonDrifted: one or more generated objects were changed or deleted by someone else.
	ReasonDrifted = "Drifted"
	// ReasonMissing: one or more generated objects do not exist (Audit mode, or not yet created).
	ReasonMissing = "Missing"
	// ReasonEffective: nothing outside meshguard weakens the profile.
	ReasonEffective = "NotWeakened"
	// ReasonWeakened: an object meshguard does not own weakens the profile.
	ReasonWeakened = "Weakened"
	// ReasonNotChecked: the check was not performed (for example the profile is not governing).
	ReasonNotChecked = "NotChecked"
	// ReasonExpectationsAllMet: every expectation gets the answer it wants.
	ReasonExpectationsAllMet = "AllMet"
	// ReasonExpectationNotMet: an expectation gets the opposite answer; the message names the first
	// such expectation and the object that decides it.
	ReasonExpectationNotMet = "ExpectationNotMet"
	// ReasonExpectationUndetermined: no expectation is contradicted, but the answer of one depends
	// on something meshguard does not model or was not told (the message says what).
	ReasonExpectationUndetermined = "ExpectationUndetermined"
	// ReasonAtBaseline: the profile asks for at least every floor that applies to its namespace.
	ReasonAtBaseline = "AtBaseline"
	// ReasonOpensFloorDefaults: the profile asks for at least every floor, and some of its rules
	// open what a floor's default deny closes (status.openedUnderFloor lists them). A fact, not an
	// error: a floor's default deny is a default, its ceilings and Deny rules are the limits.
	ReasonOpensFloorDefaults = "OpensFloorDefaults"
	// ReasonNoClusterProfile: no ClusterMeshSecurityProfile selects the namespace.
	ReasonNoClusterProfile = "NoClusterProfile"
	// ReasonBelowBaseline: some fields ask for less than a floor and are held at it.
	ReasonBelowBaseline = "BelowBaseline"
	// ReasonClusterProfileConflict: the cluster profiles selecting a namespace (or the namespace's
	// own profile) cannot be merged, for example they name different meshes: nothing new is applied
	// in the namespace until the conflict is resolved.
	ReasonClusterProfileConflict = "ClusterProfileConflict"
	// ReasonUnenforceable: a part of the profile cannot be enforced where its workloads run (for
	// example an L7 rule for ambient pods without a waypoint), or Istio reports that it did not
	// bind a generated policy (ZtunnelAccepted or WaypointAccepted False); the message names the
	// rule and the pods. What could have failed open was not rendered.
	ReasonUnenforceable = "Unenforceable"
	// ReasonIstioConfigClusterElsewhere (Stalled): the cluster is a remote cluster of an Istio
	// primary-remote mesh: no istiod runs in it and none reads its Istio policies (istiod reads
	// them from its own cluster only, istio/istio#31211), so meshguard writes nothing; the profile
	// belongs in the primary cluster. The message names what showed it.
	ReasonIstioConfigClusterElsewhere = "IstioConfigClusterElsewhere"
	// ReasonNamespacesNotReady (ClusterMeshSecurityProfile): some selected namespaces are not Ready.
	ReasonNamespacesNotReady = "NamespacesNotReady"
)

// Certificate health reasons, used in the CertificatesHealthy condition and per certificate.
const (
	ReasonCertValid          = "Valid"
	ReasonCertExpiringSoon   = "ExpiringSoon"
	ReasonCertExpired        = "Expired"
	ReasonCertNotYetValid    = "NotYetValid"
	ReasonCertUntrustedChain = "UntrustedChain"
	ReasonCertRootMismatch   = "RootMismatch"
	ReasonCertNotFound       = "NotFound"
	ReasonCertUnreadable     = "Unreadable"
	ReasonCertUnsupported    = "UnsupportedAlgorithm"
	// ReasonCertExternal (CertificatesHealthy only): Istio's CA is outside the cluster (the
	// manager's --istio-ca=external: cert-manager istio-csr, Vault); the namespace's roots are
	// valid, the CA itself cannot be inspected. Not blocking: the profile can be Ready.
	ReasonCertExternal = "External"
)

// Labels meshguard puts on every generated object.
const (
	// LabelManagedBy is the well-known managed-by label; its value is ManagedByValue.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on generated objects.
	ManagedByValue = "meshguard"
	// LabelProfile names the MeshSecurityProfile that generated an object.
	LabelProfile = "security.meshguard.dev/profile"
)

// FieldManager is the server-side apply field manager meshguard writes with. Never rename it:
// renaming would orphan every field meshguard owns in existing clusters.
const FieldManager = "meshguard"
