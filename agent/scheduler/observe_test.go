package scheduler

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/observe"
	"github.com/weft-dev/weft/agent/observe/observetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func TestRunEvents(t *testing.T) {
	clk := newFakeClock()
	inv := newFakeInvoker()
	sink := &observetest.Sink{}
	s := New(Config{AgentID: "agent-1", Invoker: inv, Clock: clk, Observer: sink, NewCID: func() string { return "cid-1" }})
	var jobs []*adminv1.Job
	for _, name := range []string{"ok", "broken", "slow", "refused"} {
		j := intervalJob(name, t0.Add(time.Hour), time.Hour)
		j.Payload = `{"n":1}`
		jobs = append(jobs, j)
	}
	s.Set(jobs)
	inv.status["broken.svc"] = http.StatusInternalServerError
	inv.status["slow.svc"] = http.StatusGatewayTimeout
	inv.status["refused.svc"] = http.StatusUnprocessableEntity

	tests := []struct {
		job     string
		outcome string
		status  int
	}{
		{"ok", OutcomeOK, 200},
		{"broken", OutcomeError, 500},
		{"slow", OutcomeTimeout, 504},
		{"refused", OutcomeError, 422}, // a job's run that did not end ok failed, whatever the status
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			run, err := s.RunNow(context.Background(), tt.job)
			if err != nil || run.GetOutcome() != tt.outcome {
				t.Fatalf("RunNow = %v, %v; want outcome %s", run, err, tt.outcome)
			}
			got := sink.Take()
			if len(got) != 1 {
				t.Fatalf("%d events, want 1", len(got))
			}
			e := got[0]
			e.Input, e.Output = nil, nil // this test looks at their sizes
			want := observe.Event{
				Kind: observe.KindJob, Name: tt.job, Service: tt.job + ".svc", Job: tt.job, CID: "cid-1",
				Status: tt.status, Failed: tt.outcome != OutcomeOK, Error: run.GetError(), End: t0, BytesIn: int64(len(`{"n":1}`)),
			}
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("event\n%+v\nwant\n%+v", e, want)
			}
		})
	}
}
