package secdef

import (
	"testing"

	"github.com/weft-dev/weft/proto/prototest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// TestOfSetsEveryField fills every field of the API's message and finds
// each field of Definition set from it: a field added to one and not mapped
// fails here.
func TestOfSetsEveryField(t *testing.T) {
	for _, name := range prototest.ZeroFields(Of(prototest.Fill(&adminv1.SecurityDefinition{}))) {
		t.Errorf("Definition.%s is not set from the API's message", name)
	}
}
