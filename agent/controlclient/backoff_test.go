package controlclient

import (
	"context"
	"testing"
	"time"
)

func TestBackoffGrowsCapsAndResets(t *testing.T) {
	b := NewBackoff(100*time.Millisecond, time.Second, nil)
	ceilings := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, c := range ceilings {
		c *= time.Millisecond
		d := b.Next()
		if d < c/2 || d > c {
			t.Fatalf("wait %d = %s, want in [%s, %s]", i, d, c/2, c)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after Reset wait = %s, want at most 100ms", d)
	}
}

type fakeClock chan time.Time

func (c fakeClock) After(time.Duration) <-chan time.Time { return c }

func TestBackoffSleepUsesClockAndContext(t *testing.T) {
	clock := make(fakeClock, 1)
	b := NewBackoff(time.Hour, time.Hour, clock)
	clock <- time.Now()
	if err := b.Sleep(context.Background(), time.Hour); err != nil {
		t.Fatalf("Sleep with a fired clock = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Sleep(ctx, time.Hour); err == nil {
		t.Fatal("Sleep with a cancelled context returned nil")
	}
}
