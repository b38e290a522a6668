package configfile

import (
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// Explain is err, a refusal of the control plane's PlanConfig or
// ImportConfig, with each problem it names by its path in the config put
// at the file and line it comes from:
//
//	prod.yaml:12: channel "orders": service: service "x" is not deployed
//
// A problem of no place in the files (a live object the config leaves as
// it is) reads as the control plane said it. An error without such detail
// comes back as it is.
func (d *Doc) Explain(err error) error {
	st := status.Convert(err)
	var problems []error
	for _, det := range st.Details() {
		br, ok := det.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			line := v.GetDescription()
			if at := d.Locate(v.GetField()); at != "" {
				line = at + ": " + line
			}
			problems = append(problems, errors.New(line))
		}
	}
	if len(problems) == 0 {
		return err
	}
	op, _, _ := strings.Cut(st.Message(), ": ")
	return errors.Join(append([]error{errors.New(op + " refused, nothing was changed:")}, problems...)...)
}
