// Package ticker is a service package for the end-to-end tests of the
// scheduler: its service tells a witness server outside Weft about every
// run, so the tests count runs without trusting Weft's own bookkeeping.
package ticker

import (
	"github.com/weft-dev/weft/agent/sdk"
)

// TickInput is the job's payload.
type TickInput struct {
	Tag string `json:"tag" weft:"required"`
}

// Tick is what the witness hears of one run.
type Tick struct {
	Tag         string `json:"tag"`
	Job         string `json:"job"`
	Trigger     string `json:"trigger"`
	ScheduledAt string `json:"scheduled_at"`
	CID         string `json:"cid"`
}

// Report tells the "witness" connection about this run.
func Report(ctx *sdk.Context, in TickInput) (Tick, error) {
	h := ctx.Header()
	t := Tick{
		Tag:         in.Tag,
		Job:         h.Get("X-Weft-Job"),
		Trigger:     h.Get("X-Weft-Trigger"),
		ScheduledAt: h.Get("X-Weft-Scheduled-At"),
		CID:         ctx.CID(),
	}
	if err := ctx.Outgoing("witness").JSON(nil, t, nil); err != nil {
		return Tick{}, err
	}
	return t, nil
}

func init() {
	sdk.Register("ticker.report", Report)
}
