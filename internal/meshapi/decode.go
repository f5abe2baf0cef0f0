package meshapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// NotUnderstoodError says that an object's spec does not decode into the type meshguard has for
// its kind: a field it does not know, or a value of the wrong type.
type NotUnderstoodError struct {
	// Field is the path of the field that is not understood ("spec.rules[0].from[0].source.foo"),
	// or "spec" when it cannot be located.
	Field string
	// Err is the decoder's error.
	Err error
}

// Error names the field.
func (e *NotUnderstoodError) Error() string {
	return fmt.Sprintf("field %s is not understood: %v", e.Field, e.Err)
}

// Unwrap returns the decoder's error.
func (e *NotUnderstoodError) Unwrap() error { return e.Err }

// specJSON is the object's spec as JSON; an object without spec has an empty one.
func specJSON(u *unstructured.Unstructured) ([]byte, any, error) {
	spec, ok := u.Object["spec"]
	if !ok || spec == nil {
		return []byte("{}"), map[string]any{}, nil
	}
	b, err := json.Marshal(spec)
	return b, spec, err
}

// decodeProto decodes the spec into an upstream protobuf message, rejecting unknown fields.
func decodeProto(u *unstructured.Unstructured, msg proto.Message) error {
	b, spec, err := specJSON(u)
	if err != nil {
		return &NotUnderstoodError{Field: "spec", Err: err}
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(b, msg); err != nil {
		return notUnderstood(spec, err)
	}
	return nil
}

// decodeStrict decodes the spec into a hand-written type, rejecting unknown fields.
func decodeStrict(u *unstructured.Unstructured, into any) error {
	b, spec, err := specJSON(u)
	if err != nil {
		return &NotUnderstoodError{Field: "spec", Err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return notUnderstood(spec, err)
	}
	return nil
}

var (
	// unknownField and enumField find the field's name in encoding/json's and protojson's
	// messages.
	unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)
	enumField    = regexp.MustCompile(`enum field (\w+)`)
	// protoPrefix is protojson's "proto: (line 1:N): ", which says nothing to a reader of the
	// object (its separator is randomly a space or a no-break space).
	protoPrefix = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)
)

// notUnderstood locates the unknown field the decoder names in the spec, for a message that
// names the field by its path.
func notUnderstood(spec any, err error) error {
	clean := errors.New(protoPrefix.ReplaceAllString(err.Error(), ""))
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		clean = errors.New("unknown field " + strconv.Quote(m[1]))
		if p := findKey(spec, "spec", m[1]); p != "" {
			return &NotUnderstoodError{Field: p, Err: clean}
		}
	}
	if m := enumField.FindStringSubmatch(err.Error()); m != nil {
		if p := findKey(spec, "spec", m[1]); p != "" {
			return &NotUnderstoodError{Field: p, Err: clean}
		}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &NotUnderstoodError{Field: "spec." + te.Field, Err: err}
	}
	return &NotUnderstoodError{Field: "spec", Err: clean}
}

// findKey returns the path of the first map key named key under v, in a stable order.
func findKey(v any, path, key string) string {
	switch t := v.(type) {
	case map[string]any:
		if _, ok := t[key]; ok {
			return path + "." + key
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p := findKey(t[k], path+"."+k, key); p != "" {
				return p
			}
		}
	case []any:
		for i, x := range t {
			if p := findKey(x, fmt.Sprintf("%s[%d]", path, i), key); p != "" {
				return p
			}
		}
	}
	return ""
}
