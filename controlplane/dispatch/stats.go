package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/agent/shared/statscale"
	"github.com/weft-dev/weft/controlplane/auth"
	"github.com/weft-dev/weft/controlplane/store"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// maxBucketsReported bounds one ReportStats.
const maxBucketsReported = 10_000

// maxStatsAhead is how far in the future a bucket may start: agents'
// clocks drift, but a bucket hours ahead is a broken clock.
const maxStatsAhead = 5 * time.Minute

// maxStatsName is the longest object name the store keeps.
const maxStatsName = 255

// ReportStats records the statistics an agent reports: every bucket, or
// none when one is wrong.
func (s *Server) ReportStats(ctx context.Context, req *agentv1.ReportStatsRequest) (*agentv1.ReportStatsResponse, error) {
	id := req.GetAgentId()
	if !agentIDPattern.MatchString(id) {
		return nil, status.Errorf(codes.InvalidArgument, "report stats: agent_id %q is not an agent id", id)
	}
	if err := auth.CheckAgent(ctx, id); err != nil {
		return nil, err
	}
	if n := len(req.GetBuckets()); n > maxBucketsReported {
		return nil, status.Errorf(codes.InvalidArgument, "report stats: %d buckets in one report; send at most %d", n, maxBucketsReported)
	}
	if _, err := s.store.GetAgent(ctx, id); errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.InvalidArgument, "report stats: agent_id %q is unknown: an agent says hello on the Sync stream first", id)
	} else if err != nil {
		s.log.Error("cannot read an agent reporting stats", "agent", id, "err", err)
		return nil, storeFailed(fmt.Sprintf("report stats: read agent %q", id), err)
	}
	if len(req.GetEpoch()) > maxEpochLength {
		return nil, status.Errorf(codes.InvalidArgument, "report stats: epoch of %d bytes; at most %d", len(req.GetEpoch()), maxEpochLength)
	}
	now := s.now()
	resp := &agentv1.ReportStatsResponse{}
	buckets := make([]store.StatsBucket, 0, len(req.GetBuckets()))
	for i, b := range req.GetBuckets() {
		// A bad bucket is left out, not the report: the agent would send
		// it again and again, and the good ones with it.
		if err := checkBucket(b, now); err != nil {
			resp.Refused = append(resp.Refused, fmt.Sprintf("buckets[%d]%v", i, err))
			continue
		}
		buckets = append(buckets, store.StatsBucket{
			Kind: b.GetKind(), Name: b.GetName(), Start: time.UnixMilli(b.GetStartUnixMs()).UTC(),
			Count: b.GetCount(), Errors: b.GetErrors(), SumUs: b.GetSumUs(), MaxUs: b.GetMaxUs(),
			Histogram: b.GetHistogram(), Statuses: b.GetStatuses(),
			BytesIn: b.GetBytesIn(), BytesOut: b.GetBytesOut(), Seq: b.GetSeq(),
		})
	}
	if len(resp.Refused) > 0 {
		s.log.Warn("statistics buckets refused", "agent", id, "refused", len(resp.Refused), "first", resp.Refused[0])
	}
	if err := s.store.RecordStats(ctx, id, req.GetEpoch(), buckets); err != nil {
		s.log.Error("cannot record statistics", "agent", id, "buckets", len(buckets), "err", err)
		return nil, storeFailed("report stats", err)
	}
	s.statsBuckets.Add(int64(len(buckets)))
	return resp, nil
}

// maxEpochLength bounds an agent's epoch, as the store keeps it.
const maxEpochLength = 64

// StatsBuckets is how many statistics buckets this replica recorded since
// it started.
func (s *Server) StatsBuckets() int64 { return s.statsBuckets.Load() }

// checkBucket says what is wrong with b, starting with the field as
// ".name: ...", or nil.
func checkBucket(b *agentv1.StatsBucket, now time.Time) error {
	switch b.GetKind() {
	case store.StatsKindService, store.StatsKindChannel, store.StatsKindJob, store.StatsKindWorker:
	default:
		return fmt.Errorf(".kind %q: want service, channel, job or worker", b.GetKind())
	}
	switch {
	case b.GetName() == "":
		return errors.New(".name: is empty")
	case len(b.GetName()) > maxStatsName:
		return fmt.Errorf(".name %.40q...: longer than %d bytes", b.GetName(), maxStatsName)
	case strings.TrimSpace(b.GetName()) != b.GetName():
		// MySQL would take it for the name without the spaces.
		return fmt.Errorf(".name %q: starts or ends with a space", b.GetName())
	}
	start := b.GetStartUnixMs()
	switch {
	case start%time.Minute.Milliseconds() != 0:
		return fmt.Errorf(".start_unix_ms %d: not on a minute", start)
	case time.UnixMilli(start).After(now.Add(maxStatsAhead)):
		return fmt.Errorf(".start_unix_ms %d: %s is more than %s ahead of the control plane's clock (%s)",
			start, time.UnixMilli(start).UTC().Format(time.RFC3339), maxStatsAhead, now.UTC().Format(time.RFC3339))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"count", b.GetCount()}, {"errors", b.GetErrors()}, {"sum_us", b.GetSumUs()}, {"max_us", b.GetMaxUs()},
		{"bytes_in", b.GetBytesIn()}, {"bytes_out", b.GetBytesOut()}} {
		if f.v < 0 {
			return fmt.Errorf(".%s %d: negative", f.name, f.v)
		}
	}
	if b.GetErrors() > b.GetCount() {
		return fmt.Errorf(".errors %d: more than count %d", b.GetErrors(), b.GetCount())
	}
	for k, n := range b.GetHistogram() {
		switch {
		case k < 0 || k > statscale.MaxBucket:
			return fmt.Errorf(".histogram[%d]: no such bucket; want 0 to %d", k, statscale.MaxBucket)
		case n < 0:
			return fmt.Errorf(".histogram[%d] %d: negative", k, n)
		}
	}
	for k, n := range b.GetStatuses() {
		switch {
		case k < 100 || k > 999:
			return fmt.Errorf(".statuses[%d]: not an HTTP status", k)
		case n < 0:
			return fmt.Errorf(".statuses[%d] %d: negative", k, n)
		}
	}
	return nil
}
