// Package runaway holds services that never return: an empty loop and a
// loop that works.
package runaway

import "github.com/weft-dev/weft/agent/sdk"

// In is any input.
type In struct{}

func init() {
	sdk.Register("runaway.empty", func(ctx *sdk.Context, in In) (In, error) {
		for {
		}
	})
	sdk.Register("runaway.work", func(ctx *sdk.Context, in In) (In, error) {
		x := 0
		for {
			x++
		}
	})
}
