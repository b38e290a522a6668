// Package crashers holds services that end the process they run in, each
// in its own way, for the end-to-end tests of worker processes: a
// recursion without end, writes to one map from several goroutines, and
// an allocation of 4 GB.
package crashers

import (
	"context"

	"github.com/weft-dev/weft/agent/sdk"
)

// In is any input.
type In struct{}

// Out is never returned.
type Out struct {
	N int `json:"n"`
}

// shared is written by every call of crash.maps, without a lock.
var shared = map[int]int{}

func down(n int) int { return down(n+1) + 1 }

func init() {
	sdk.Register("crash.recurse", func(ctx *sdk.Context, in In) (Out, error) {
		return Out{N: down(0)}, nil
	})
	sdk.Register("crash.maps", func(ctx *sdk.Context, in In) (Out, error) {
		for g := 0; g < 4; g++ {
			if err := ctx.Go(func(gctx context.Context) {
				for i := 0; ; i++ {
					shared[i%1024] = i
				}
			}); err != nil {
				return Out{}, err
			}
		}
		for i := 0; ; i++ {
			shared[i%1024] = i
		}
	})
	sdk.Register("crash.hog", func(ctx *sdk.Context, in In) (Out, error) {
		b := make([]byte, 4<<30)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		return Out{N: len(b)}, nil
	})
}
