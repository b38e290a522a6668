package secdef

import (
	"reflect"
	"testing"

	"github.com/weft-dev/weft/proto/prototest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestOfSetsEveryField fills every field of the API's message and finds
// each field of Definition set from it: a field added to one and not
// mapped fails here.
func TestOfSetsEveryField(t *testing.T) {
	def := Of(prototest.Fill(&adminv1.SecurityDefinition{}))
	dv := reflect.ValueOf(def)
	for i := range dv.NumField() {
		if dv.Field(i).IsZero() {
			t.Errorf("Definition.%s is not set from the API's message", dv.Type().Field(i).Name)
		}
	}
}
