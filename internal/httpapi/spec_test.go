package httpapi

import (
	"bytes"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// Every request body and every success answer of openapi.yaml has an example, and every example (of a
// body, an answer or a parameter) matches its schema as the server validates: with its formats, uuid
// included, which the document's own validation at start-up does not check. Files are exempt: receipts
// (binary) and the documentation page's scripts, style and icon.
func TestSpec_EveryBodyAndAnswerHasAnExampleThatMatchesItsSchema(t *testing.T) {
	t.Parallel()
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	check := func(where string, mt *openapi3.MediaType, as openapi3.SchemaValidationOption) {
		t.Helper()
		examples := map[string]any{}
		if mt.Example != nil {
			examples["example"] = mt.Example
		}
		for name, ex := range mt.Examples {
			examples["example "+name] = ex.Value.Value
		}
		if len(examples) == 0 && mt.Schema != nil && mt.Schema.Value.Example != nil {
			examples["the schema's example"] = mt.Schema.Value.Example
		}
		if len(examples) == 0 {
			t.Errorf("%s has no example", where)
			return
		}
		for name, ex := range examples {
			if err := visitExample(sp, mt.Schema.Value, ex, as); err != nil {
				t.Errorf("%s: %s does not match its schema: %v", where, name, err)
			}
		}
	}
	n := 0
	for path, item := range sp.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for _, p := range append(append(openapi3.Parameters{}, item.Parameters...), op.Parameters...) {
				if ex := p.Value.Example; ex != nil {
					if err := visitExample(sp, p.Value.Schema.Value, ex, openapi3.VisitAsRequest()); err != nil {
						t.Errorf("%s %s: the example of parameter %s does not match its schema: %v", method, path, p.Value.Name, err)
					}
				}
			}
			if op.RequestBody != nil {
				for name, mt := range op.RequestBody.Value.Content {
					check(method+" "+path+" request body "+name, mt, openapi3.VisitAsRequest())
					n++
				}
			}
			for status, res := range op.Responses.Map() {
				if !strings.HasPrefix(status, "2") {
					continue
				}
				for name, mt := range res.Value.Content {
					if path == "/docs/{asset}" || mt.Schema.Value.Format == "binary" {
						continue
					}
					check(method+" "+path+" "+status+" "+name, mt, openapi3.VisitAsResponse())
					n++
				}
			}
		}
	}
	for _, name := range []string{"Error", "GoTrueError"} {
		for mtName, mt := range sp.doc.Components.Responses[name].Value.Content {
			check("components.responses."+name+" "+mtName, mt, openapi3.VisitAsResponse())
		}
	}
	if n < 90 {
		t.Fatalf("checked %d bodies and answers, want every one of the document", n)
	}
}

// visitExample validates an example as the server validates requests (and the tests answers): formats on.
func visitExample(sp *spec, schema *openapi3.Schema, example any, as openapi3.SchemaValidationOption) error {
	opts := append([]openapi3.SchemaValidationOption{openapi3.MultiErrors(), as}, sp.options.SchemaValidationOptions...)
	return schema.VisitJSON(example, opts...)
}

// Example validation is on where the server loads its document: a wrong example stops it.
func TestSpec_AWrongExampleStopsTheDocumentFromLoading(t *testing.T) {
	t.Parallel()
	good := []byte("example: { success: true, inserted: 2 }")
	if bytes.Count(openapiYAML, good) != 1 {
		t.Fatalf("openapi.yaml no longer has %s: pick another example to break", good)
	}
	broken := bytes.Replace(openapiYAML, good, []byte(`example: { success: true, inserted: "two" }`), 1)
	_, err := parseSpec(broken)
	if err == nil || !strings.Contains(err.Error(), "invalid example") || !strings.Contains(err.Error(), "/locations/batch") {
		t.Fatalf("a wrong example loaded: %v", err)
	}
}
