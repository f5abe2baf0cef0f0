// Package argocd tests meshguard's Argo CD health checks (MeshSecurityProfile,
// ClusterMeshSecurityProfile, and argoproj.io/Application for app-of-apps) the way Argo CD runs them:
// gopher-lua, the object as the global `obj`, the returned table's status and message compared
// with health_test.yaml (Argo CD's own test format).
package argocd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// healthCheck is one resource customization: its folder (Argo CD's resource_customizations
// layout), its argocd-cm key, and the API type its inputs must decode into.
type healthCheck struct {
	dir, configKey string
	// typed returns a fresh object of the kind's Go type; nil when the kind has none here.
	typed    func() any
	minCases int
}

var checks = []healthCheck{
	{
		dir:       "resource_customizations/security.meshguard.dev/MeshSecurityProfile",
		configKey: "resource.customizations.health.security.meshguard.dev_MeshSecurityProfile",
		typed:     func() any { return &v1alpha1.MeshSecurityProfile{} },
		minCases:  8,
	},
	{
		dir:       "resource_customizations/security.meshguard.dev/ClusterMeshSecurityProfile",
		configKey: "resource.customizations.health.security.meshguard.dev_ClusterMeshSecurityProfile",
		typed:     func() any { return &v1alpha1.ClusterMeshSecurityProfile{} },
		minCases:  5,
	},
	{
		// Argo CD's Application type lives in Argo CD's module, which does not build here
		// (gitops-engine fails with this Go); the inputs are checked as YAML only.
		dir:       "resource_customizations/argoproj.io/Application",
		configKey: "resource.customizations.health.argoproj.io_Application",
		minCases:  4,
	},
}

// checkDir is the MeshSecurityProfile check's folder.
var checkDir = checks[0].dir

// healthTests is Argo CD's health_test.yaml.
type healthTests struct {
	Tests []struct {
		HealthStatus struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"healthStatus"`
		InputPath string `json:"inputPath"`
	} `json:"tests"`
}

// libSet opens a selection of libraries in a fresh state.
type libSet struct {
	name string
	// open returns a state ready for the script.
	open func() *lua.LState
}

func openWith(skipOpenLibs bool, libs ...lib) *lua.LState {
	l := lua.NewState(lua.Options{SkipOpenLibs: skipOpenLibs})
	for _, lib := range libs {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			panic(err)
		}
	}
	return l
}

// lib is a library name and the function that opens it.
type lib struct {
	name string
	fn   lua.LGFunction
}

var (
	pkgLib   = lib{lua.LoadLibName, lua.OpenPackage}
	baseLib  = lib{lua.BaseLibName, lua.OpenBase}
	tableLib = lib{lua.TabLibName, lua.OpenTable}
)

var libSets = []libSet{
	// Argo CD's default for a script from argocd-cm (util/lua VM.runLua with UseOpenLibs false):
	// SkipOpenLibs, then package, base and table (and Argo CD's own reduced os, which lives in
	// Argo CD's module; the script does not use os).
	{"argocd-default", func() *lua.LState { return openWith(true, pkgLib, baseLib, tableLib) }},
	// Stricter than Argo CD: the base library alone.
	{"base-only", func() *lua.LState { return openWith(true, baseLib) }},
	// resource.customizations.useOpenLibs set: every standard library.
	{"open-libs", func() *lua.LState { return openWith(false, pkgLib, baseLib, tableLib) }},
}

// toLua converts a decoded JSON/YAML value into a Lua value as Argo CD does: maps become
// tables with string keys, slices become arrays (1-based), numbers become LNumber and a
// json.Number becomes a string.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetString(k, toLua(l, item))
		}
		return t
	}
	panic("toLua: unsupported type")
}

// result is what Argo CD reads from the returned table.
type result struct{ Status, Message string }

// run executes the script in l with obj set. With env set, the chunk runs in that environment
// (used to record which globals it reads).
func run(t *testing.T, l *lua.LState, script string, obj map[string]any, env *lua.LTable) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // as Argo CD
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	fn, err := l.LoadString(script)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if env != nil {
		fn.Env = env
	}
	l.Push(fn)
	if err := l.PCall(0, lua.MultRet, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the script returned %s, not a table", l.Get(-1).Type())
	}
	var r result
	ret.ForEach(func(k, v lua.LValue) {
		key, ok := k.(lua.LString)
		if !ok {
			t.Errorf("returned table has a non-string key %v", k)
			return
		}
		s, ok := v.(lua.LString)
		if !ok {
			// Argo CD decodes the table into a HealthStatus of strings: anything else fails.
			t.Errorf("returned %s is a %s, not a string", key, v.Type())
			return
		}
		switch key {
		case "status":
			r.Status = string(s)
		case "message":
			r.Message = string(s)
		default:
			t.Errorf("returned table has an unexpected key %q", key)
		}
	})
	return r
}

// decodeInt64 decodes as the Argo CD controller sees live objects: integers as int64.
func decodeInt64(t *testing.T, jsonBytes []byte) map[string]any {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(jsonBytes); err != nil {
		t.Fatal(err)
	}
	return u.Object
}

// decodeNumber keeps numbers as json.Number, which Argo CD hands to Lua as strings.
func decodeNumber(t *testing.T, jsonBytes []byte) map[string]any {
	d := json.NewDecoder(bytes.NewReader(jsonBytes))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadTests(t *testing.T, dir string) healthTests {
	var ht healthTests
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "health_test.yaml")), &ht); err != nil {
		t.Fatalf("health_test.yaml: %v", err)
	}
	return ht
}

// baseGlobals is every global a state with only the base library defines.
func baseGlobals() map[string]bool {
	l := openWith(true, baseLib)
	defer l.Close()
	names := map[string]bool{}
	l.G.Global.ForEach(func(k, _ lua.LValue) { names[k.String()] = true })
	return names
}

func TestHealthLua(t *testing.T) {
	for _, hc := range checks {
		t.Run(filepath.Base(hc.dir), func(t *testing.T) { testHealthLua(t, hc) })
	}
}

func testHealthLua(t *testing.T, hc healthCheck) {
	script := string(readFile(t, filepath.Join(hc.dir, "health.lua")))
	ht := loadTests(t, hc.dir)
	if len(ht.Tests) < hc.minCases {
		t.Fatalf("health_test.yaml has %d cases, want at least %d", len(ht.Tests), hc.minCases)
	}
	allowed := baseGlobals()
	allowed["obj"] = true
	read := map[string]bool{}

	for _, tc := range ht.Tests {
		t.Run(strings.TrimSuffix(filepath.Base(tc.InputPath), ".yaml"), func(t *testing.T) {
			raw := readFile(t, filepath.Join(hc.dir, tc.InputPath))
			// Every input is an object the API types accept, field for field.
			if hc.typed != nil {
				if err := yaml.UnmarshalStrict(raw, hc.typed()); err != nil {
					t.Fatalf("%s is not a %s: %v", tc.InputPath, filepath.Base(hc.dir), err)
				}
			}
			jsonBytes, err := yaml.YAMLToJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := result{tc.HealthStatus.Status, tc.HealthStatus.Message}
			for _, decode := range []struct {
				name string
				fn   func(*testing.T, []byte) map[string]any
			}{{"int64", decodeInt64}, {"json.Number", decodeNumber}} {
				for _, ls := range libSets {
					l := ls.open()
					var env *lua.LTable
					if ls.name == "base-only" {
						// Run the chunk in an empty environment that records every global read and
						// forwards it to the real globals; refuse global writes.
						env = l.NewTable()
						mt := l.NewTable()
						globals := l.G.Global
						mt.RawSetString("__index", l.NewFunction(func(l *lua.LState) int {
							name := l.CheckString(2)
							read[name] = true
							l.Push(globals.RawGetString(name))
							return 1
						}))
						mt.RawSetString("__newindex", l.NewFunction(func(l *lua.LState) int {
							l.RaiseError("the script sets the global %q: use local", l.CheckString(2))
							return 0
						}))
						l.SetMetatable(env, mt)
					}
					got := run(t, l, script, decode.fn(t, jsonBytes), env)
					l.Close()
					if got != want {
						t.Errorf("%s, numbers as %s:\n got  %+v\n want %+v", ls.name, decode.name, got, want)
					}
				}
			}
		})
	}

	var names []string
	for name := range read {
		names = append(names, name)
		if !allowed[name] {
			t.Errorf("the script reads the global %q, which the base library does not define", name)
		}
	}
	sort.Strings(names)
	t.Logf("globals the script reads: %s", strings.Join(names, ", "))
}

// TestEveryTestdataFileIsATestCase keeps testdata/ and health_test.yaml in step.
func TestEveryTestdataFileIsATestCase(t *testing.T) {
	for _, hc := range checks {
		testdataInTests(t, hc.dir)
	}
}

func testdataInTests(t *testing.T, checkDir string) {
	used := map[string]bool{}
	for _, tc := range loadTests(t, checkDir).Tests {
		if used[tc.InputPath] {
			t.Errorf("%s is tested twice", tc.InputPath)
		}
		used[tc.InputPath] = true
	}
	files, err := filepath.Glob(filepath.Join(checkDir, "testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if rel, _ := filepath.Rel(checkDir, f); !used[filepath.ToSlash(rel)] {
			t.Errorf("%s is in no test case", rel)
		}
	}
}

// TestAgreesWithKstatus checks each case against kstatus (what Flux and kubectl plugins read).
// Two documented differences: kstatus reads Ready=False as InProgress (it cannot tell progress
// from failure; meshguard says Reconciling=True while it converges, so Ready=False without it
// is Degraded), and it reads a profile without status or without Ready as Current (it cannot
// tell "not written yet" from "never written"; meshguard always writes Ready).
func TestAgreesWithKstatus(t *testing.T) {
	want := map[string]status.Status{
		"testdata/healthy.yaml":                                status.CurrentStatus,
		"testdata/healthy-certificate-expiring-soon.yaml":      status.CurrentStatus,
		"testdata/audit-all-present.yaml":                      status.CurrentStatus,
		"testdata/no-status.yaml":                              status.CurrentStatus, // Progressing here
		"testdata/empty-conditions.yaml":                       status.CurrentStatus, // Progressing here
		"testdata/ready-missing.yaml":                          status.CurrentStatus, // Progressing here
		"testdata/generation-not-observed.yaml":                status.InProgressStatus,
		"testdata/reconciling-istio-not-installed.yaml":        status.InProgressStatus,
		"testdata/reconciling-before-ready.yaml":               status.InProgressStatus,
		"testdata/ready-unknown.yaml":                          status.InProgressStatus,
		"testdata/stalled-profile-conflict.yaml":               status.FailedStatus,
		"testdata/stalled-unsupported-by-mesh.yaml":            status.FailedStatus,
		"testdata/stalled-istio-config-cluster-elsewhere.yaml": status.FailedStatus,
		"testdata/conflict.yaml":                               status.InProgressStatus, // Degraded here
		"testdata/drifted-fight.yaml":                          status.InProgressStatus, // Degraded here
		"testdata/audit-drifted.yaml":                          status.InProgressStatus, // Healthy here (auditHealthy)
		"testdata/audit-weakened.yaml":                         status.InProgressStatus, // Degraded here
		"testdata/certificate-expired.yaml":                    status.InProgressStatus, // Degraded here
		"testdata/weakened.yaml":                               status.InProgressStatus, // Degraded here
		"testdata/expectation-not-met.yaml":                    status.InProgressStatus, // Degraded here
		"testdata/expectation-undetermined.yaml":               status.InProgressStatus, // Degraded here
	}
	// Which Argo CD status goes with which kstatus status: Healthy only with Current, and
	// kstatus Failed only with Degraded.
	pairs := map[string][]status.Status{
		"Healthy":     {status.CurrentStatus},
		"Progressing": {status.InProgressStatus, status.CurrentStatus},
		"Degraded":    {status.FailedStatus, status.InProgressStatus},
	}
	// The third documented difference: an Audit profile whose objects are missing or differ
	// (Ready=False, AuditOnly) is Healthy for Argo CD, so that the Audit-first rollout does not
	// stop the sync waves after it; kstatus reads Ready=False as InProgress.
	auditHealthy := map[string]bool{"testdata/audit-drifted.yaml": true}
	for _, tc := range loadTests(t, checkDir).Tests {
		ks, ok := want[tc.InputPath]
		if !ok {
			t.Errorf("%s: no kstatus expectation", tc.InputPath)
			continue
		}
		jsonBytes, err := yaml.YAMLToJSON(readFile(t, filepath.Join(checkDir, tc.InputPath)))
		if err != nil {
			t.Fatal(err)
		}
		res, err := status.Compute(&unstructured.Unstructured{Object: decodeInt64(t, jsonBytes)})
		if err != nil {
			t.Fatalf("%s: %v", tc.InputPath, err)
		}
		if res.Status != ks {
			t.Errorf("%s: kstatus %s, want %s", tc.InputPath, res.Status, ks)
		}
		argo := tc.HealthStatus.Status
		okPair := auditHealthy[tc.InputPath] && argo == "Healthy" && res.Status == status.InProgressStatus
		for _, s := range pairs[argo] {
			okPair = okPair || s == res.Status
		}
		if !okPair {
			t.Errorf("%s: Argo CD %s but kstatus %s", tc.InputPath, argo, res.Status)
		}
	}
}

// TestConfigMapPatchMatchesScript keeps the installable argocd-cm patch identical to each
// health.lua: one key per check, nothing else (no useOpenLibs: the scripts need none).
func TestConfigMapPatchMatchesScript(t *testing.T) {
	var cm struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   map[string]any    `json:"metadata"`
		Data       map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(readFile(t, "argocd-cm-patch.yaml"), &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Kind != "ConfigMap" || cm.Metadata["name"] != "argocd-cm" {
		t.Fatalf("argocd-cm-patch.yaml is a %s %v, want ConfigMap argocd-cm", cm.Kind, cm.Metadata["name"])
	}
	for _, hc := range checks {
		script := string(readFile(t, filepath.Join(hc.dir, "health.lua")))
		if cm.Data[hc.configKey] != script {
			t.Errorf("argocd-cm-patch.yaml's %s differs from %s/health.lua: copy it again", hc.configKey, hc.dir)
		}
	}
	if len(cm.Data) != len(checks) {
		t.Errorf("argocd-cm-patch.yaml sets %d keys, want one per health check (%d)", len(cm.Data), len(checks))
	}
}
