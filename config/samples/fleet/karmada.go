package fleet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// KarmadaScripts are the Lua scripts of karmada-resourceinterpretercustomization.yaml.
type KarmadaScripts struct {
	// Target is the customization's target, apiVersion/kind.
	Target string
	// Health defines InterpretHealth, Reflect ReflectStatus, Aggregate AggregateStatus.
	Health, Reflect, Aggregate string
}

// LoadKarmadaScripts reads the ResourceInterpreterCustomization sample.
func LoadKarmadaScripts() (*KarmadaScripts, error) {
	b, err := os.ReadFile(filepath.Join(Dir(), "karmada-resourceinterpretercustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var ric struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Target struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			} `json:"target"`
			Customizations map[string]struct {
				LuaScript string `json:"luaScript"`
			} `json:"customizations"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(b, &ric); err != nil {
		return nil, fmt.Errorf("karmada-resourceinterpretercustomization.yaml: %w", err)
	}
	c := ric.Spec.Customizations
	return &KarmadaScripts{
		Target: ric.Spec.Target.APIVersion + "/" + ric.Spec.Target.Kind,
		Health: c["healthInterpretation"].LuaScript, Reflect: c["statusReflection"].LuaScript, Aggregate: c["statusAggregation"].LuaScript,
	}, nil
}

// CallLua runs fn, a global the script defines, with args (decoded JSON values, converted as
// Karmada's Lua VM converts them: numbers become Lua numbers) in a state with Lua's base library
// only, and returns its first result converted back (a table with keys 1..n becomes a list,
// integral numbers int64).
func CallLua(script, fn string, args ...any) (any, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	lua.OpenBase(l)
	if err := l.DoString(script); err != nil {
		return nil, fmt.Errorf("load %s: %w", fn, err)
	}
	in := make([]lua.LValue, 0, len(args))
	for _, a := range args {
		v, err := toLua(a)
		if err != nil {
			return nil, err
		}
		in = append(in, v)
	}
	if err := l.CallByParam(lua.P{Fn: l.GetGlobal(fn), NRet: 1, Protect: true}, in...); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return fromLua(l.Get(-1)), nil
}

// AggregateMembers reflects each member's profile (cluster name → object) and aggregates them
// into the template as Karmada does, in the order of clusters.
func (k *KarmadaScripts) AggregateMembers(template map[string]any, clusters []string, members map[string]map[string]any) (map[string]any, error) {
	items := []any{}
	for _, name := range clusters {
		item := map[string]any{"clusterName": name, "applied": true}
		if obj := members[name]; obj != nil {
			st, err := CallLua(k.Reflect, "ReflectStatus", obj)
			if err != nil {
				return nil, err
			}
			item["status"] = st
		}
		items = append(items, item)
	}
	out, err := CallLua(k.Aggregate, "AggregateStatus", template, items)
	if err != nil {
		return nil, err
	}
	m, ok := out.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("AggregateStatus returned %T, not an object", out)
	}
	return m, nil
}

func toLua(v any) (lua.LValue, error) {
	switch v := v.(type) {
	case nil:
		return lua.LNil, nil
	case bool:
		return lua.LBool(v), nil
	case string:
		return lua.LString(v), nil
	case float64:
		return lua.LNumber(v), nil
	case int64:
		return lua.LNumber(v), nil
	case int:
		return lua.LNumber(v), nil
	case []any:
		t := &lua.LTable{}
		for _, x := range v {
			lv, err := toLua(x)
			if err != nil {
				return nil, err
			}
			t.Append(lv)
		}
		return t, nil
	case map[string]any:
		t := &lua.LTable{}
		for k, x := range v {
			lv, err := toLua(x)
			if err != nil {
				return nil, err
			}
			t.RawSetString(k, lv)
		}
		return t, nil
	}
	return nil, fmt.Errorf("toLua: %T is not a decoded JSON value", v)
}

func fromLua(v lua.LValue) any {
	switch v := v.(type) {
	case lua.LBool:
		return bool(v)
	case lua.LString:
		return string(v)
	case lua.LNumber:
		if float64(v) == float64(int64(v)) {
			return int64(v)
		}
		return float64(v)
	case *lua.LTable:
		if n := v.Len(); n > 0 {
			arr := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				arr = append(arr, fromLua(v.RawGetInt(i)))
			}
			return arr
		}
		m := map[string]any{}
		v.ForEach(func(k, x lua.LValue) { m[k.String()] = fromLua(x) })
		return m
	}
	return nil
}

// asProfile decodes an aggregated template strictly: the template's API server would prune a
// field meshguard's CRD does not have.
func asProfile(obj map[string]any) (*v1alpha1.MeshSecurityProfile, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	p := &v1alpha1.MeshSecurityProfile{}
	if err := yaml.UnmarshalStrict(b, p); err != nil {
		return nil, fmt.Errorf("the aggregated template is not a MeshSecurityProfile: %w\n%s", err, b)
	}
	return p, nil
}

// AggregateProfiles is AggregateMembers decoded into a MeshSecurityProfile, checked strictly.
func (k *KarmadaScripts) AggregateProfiles(template map[string]any, clusters []string, members map[string]map[string]any) (*v1alpha1.MeshSecurityProfile, error) {
	out, err := k.AggregateMembers(template, clusters, members)
	if err != nil {
		return nil, err
	}
	return asProfile(out)
}
