// Package flaky is a service package for the end-to-end tests of
// statistics and debugging: its service fails or takes long on demand.
package flaky

import (
	"time"

	"github.com/weft-dev/weft/agent/sdk"
)

// Input says how the call should go. Password is there to be redacted
// from the samples the agent keeps.
type Input struct {
	Fail     bool   `json:"fail"`
	SleepMs  int    `json:"sleep_ms"`
	Password string `json:"password"`
}

// Output is a successful call's answer.
type Output struct {
	OK bool `json:"ok"`
}

// Run fails when asked to, after sleeping as long as asked.
func Run(ctx *sdk.Context, in Input) (Output, error) {
	if in.SleepMs > 0 {
		time.Sleep(time.Duration(in.SleepMs) * time.Millisecond)
	}
	if in.Fail {
		ctx.Logger().Error("asked to fail")
		return Output{}, sdk.Errorf(500, "asked to fail")
	}
	return Output{OK: true}, nil
}

func init() {
	sdk.Register("flaky.run", Run, sdk.SlowAfter(100*time.Millisecond))
}
