// Package runaway holds the services of the runaway benchmark: two that
// never return, one an empty loop and one that works in its loop.
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
