// Package statscale is the latency histogram's scale, which agents count
// into and the control plane merges and reads percentiles from: both sides
// import it, so that a bucket index means the same duration on each.
package statscale

import (
	"math"
	"slices"
	"time"
)

// The latency histogram's scale, shared by agents (which count into it)
// and the control plane (which merges counts and reads percentiles): bucket
// 0 holds durations up to 1 µs, and bucket i > 0 those in (b(i-1), b(i)]
// where b(i) = 2^(i/8) µs, so each bucket is about 9% wider than the one
// before and a percentile read from the bucket's upper bound is at most
// 9% high. The last bucket, MaxBucket, holds everything from about 70 minutes up.
const (
	bucketsPerDoubling = 8
	// MaxBucket is the index of the last bucket.
	MaxBucket = 32 * bucketsPerDoubling
)

// BucketOf is the index of the bucket d falls in: a binary search of the
// buckets' bounds, which takes no logarithm.
func BucketOf(d time.Duration) int32 {
	us := float64(d) / float64(time.Microsecond)
	lo, hi := 0, MaxBucket // the bucket is in [lo, hi]
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if us <= uppers[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return int32(lo)
}

// uppers holds the upper bound of each bucket, in microseconds.
var uppers = func() (u [MaxBucket + 1]float64) {
	for i := range u {
		u[i] = upperUs(int32(i))
	}
	return u
}()

// upperUs is the upper bound of bucket i, in microseconds.
func upperUs(i int32) float64 {
	return math.Exp2(float64(i) / bucketsPerDoubling)
}

// BucketUpper is the upper bound of bucket i.
func BucketUpper(i int32) time.Duration {
	return time.Duration(upperUs(i) * float64(time.Microsecond))
}

// Percentile reads the q-quantile (0 < q <= 1, such as 0.99) of the
// durations counted in hist (bucket index to count) as the upper bound of
// the bucket it falls in, capped at longest when it is known (> 0): the
// largest duration seen. It is 0 for an empty histogram.
func Percentile(hist map[int32]int64, q float64, longest time.Duration) time.Duration {
	var total int64
	keys := make([]int32, 0, len(hist))
	for k, n := range hist {
		if n > 0 {
			total += n
			keys = append(keys, k)
		}
	}
	if total == 0 {
		return 0
	}
	slices.Sort(keys)
	rank := max(int64(math.Ceil(q*float64(total))), 1)
	var seen int64
	for _, k := range keys {
		seen += hist[k]
		if seen >= rank {
			d := BucketUpper(k)
			if longest > 0 && d > longest {
				d = longest
			}
			return d
		}
	}
	return longest
}

// Merge adds the counts of from into into.
func Merge(into, from map[int32]int64) {
	for k, n := range from {
		into[k] += n
	}
}
