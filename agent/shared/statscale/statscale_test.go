package statscale

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketOf(t *testing.T) {
	for _, d := range []time.Duration{0, 500 * time.Nanosecond, time.Microsecond, 1500 * time.Nanosecond, 2 * time.Microsecond,
		37 * time.Microsecond, time.Millisecond, 12345 * time.Microsecond, time.Second, time.Minute, time.Hour} {
		i := BucketOf(d)
		if d > BucketUpper(i) {
			t.Errorf("%s in bucket %d whose upper bound is %s", d, i, BucketUpper(i))
		}
		if i > 0 && d <= BucketUpper(i-1) {
			t.Errorf("%s in bucket %d, but bucket %d holds up to %s", d, i, i-1, BucketUpper(i-1))
		}
		if d >= time.Microsecond && float64(BucketUpper(i)) > float64(d)*1.091 {
			t.Errorf("%s read back as %s: more than 9%% high", d, BucketUpper(i))
		}
	}
	if got := BucketOf(100 * time.Hour); got != MaxBucket {
		t.Errorf("100h in bucket %d, want the last, %d", got, MaxBucket)
	}
}

func TestPercentile(t *testing.T) {
	hist := map[int32]int64{}
	// 98 fast calls of 1 ms, one of 100 ms, one of 2 s.
	hist[BucketOf(time.Millisecond)] += 98
	hist[BucketOf(100*time.Millisecond)]++
	hist[BucketOf(2*time.Second)]++
	near := func(got, want time.Duration) bool { return got >= want && float64(got) <= float64(want)*1.091 }
	if p := Percentile(hist, 0.5, 2*time.Second); !near(p, time.Millisecond) {
		t.Errorf("p50 = %s, want about 1ms", p)
	}
	if p := Percentile(hist, 0.99, 2*time.Second); !near(p, 100*time.Millisecond) {
		t.Errorf("p99 = %s, want about 100ms", p)
	}
	if p := Percentile(hist, 1, 2*time.Second); p != 2*time.Second {
		t.Errorf("p100 = %s, want the max, 2s", p)
	}
	if p := Percentile(map[int32]int64{}, 0.5, 0); p != 0 {
		t.Errorf("p50 of nothing = %s, want 0", p)
	}
	other := map[int32]int64{BucketOf(time.Millisecond): 2}
	Merge(other, hist)
	if other[BucketOf(time.Millisecond)] != 100 {
		t.Errorf("merged count = %d, want 100", other[BucketOf(time.Millisecond)])
	}
}

// TestBucketOfAgrees checks BucketOf's search of the bounds against the
// scale's definition, bucketByLog, at every bucket's bounds and between
// them.
func TestBucketOfAgrees(t *testing.T) {
	var ds []time.Duration
	for i := range int32(MaxBucket + 1) {
		b := BucketUpper(i)
		ds = append(ds, b-1, b, b+1, b+b/20)
	}
	for d := time.Duration(-1); d < 5*time.Microsecond; d++ {
		ds = append(ds, d)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 100_000 { // spread over every scale, from ns to hours
		ds = append(ds, time.Duration(rnd.Int64N(1<<rnd.IntN(43))))
	}
	ds = append(ds, 1<<62, time.Duration(1<<63-1))
	for _, d := range ds {
		if got, want := BucketOf(d), bucketByLog(d); got != want {
			t.Errorf("BucketOf(%d ns) = %d, by the definition %d", int64(d), got, want)
		}
	}
}

// bucketByLog is the bucket of d as the scale defines it: ceil(8·log2(µs)),
// at least 0, at most MaxBucket.
func bucketByLog(d time.Duration) int32 {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	i := int32(math.Ceil(math.Log2(us) * bucketsPerDoubling))
	// Rounding can put a bound itself one bucket high.
	if i > 0 && us <= upperUs(i-1) {
		i--
	}
	return min(i, MaxBucket)
}
