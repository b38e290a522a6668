package runtime_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/agent/handler"
	"github.com/weft-dev/weft/agent/runtime"
	"github.com/weft-dev/weft/agent/sdk"
)

// lateFunc is a runtime.Late.
type lateFunc func(err error)

func (f lateFunc) Late(err error) { f(err) }

func TestInvokeHere(t *testing.T) {
	p := load(t, service("x", "\treturn map[string]any{\"got\": in[\"a\"]}, nil"))
	defer p.Close()
	for range 3 { // watches are reused
		call := runtime.NewCall(context.Background(), time.Now(), time.Minute)
		out, err := runtime.InvokeHere(call, p.Services["x"], sdk.NewContext(call, sdk.Request{}), []byte(`{"a":1}`), lateFunc(func(err error) {
			t.Errorf("Late(%v) for a call that returned in time", err)
		}))
		call.Cancel()
		if err != nil || string(out) != `{"got":1}` {
			t.Fatalf("InvokeHere = %s, %v", out, err)
		}
	}
}

// TestInvokeHereLate overruns: Late is called while the call still runs,
// with the deadline's error, and InvokeHere returns ErrAnsweredLate only
// once the call has returned.
func TestInvokeHereLate(t *testing.T) {
	p := load(t, service("spin", "\tfor {\n\t}"))
	call := runtime.NewCall(context.Background(), time.Now(), 50*time.Millisecond)
	defer call.Cancel()
	var (
		mu      sync.Mutex
		lateErr error
	)
	lateCalled := make(chan struct{})
	returned := make(chan error, 1)
	go func() {
		_, err := runtime.InvokeHere(call, p.Services["spin"], nil, nil, lateFunc(func(err error) {
			mu.Lock()
			lateErr = err
			mu.Unlock()
			close(lateCalled)
		}))
		returned <- err
	}()
	select {
	case <-lateCalled:
	case err := <-returned:
		t.Fatalf("InvokeHere returned %v before Late was called", err)
	case <-time.After(time.Minute):
		t.Fatal("Late was not called")
	}
	mu.Lock()
	if !errors.Is(lateErr, runtime.ErrDeadline) || !errors.Is(lateErr, context.DeadlineExceeded) || handler.Status(lateErr) != 504 {
		t.Errorf("Late(%v), want ErrDeadline (504)", lateErr)
	}
	mu.Unlock()
	select {
	case err := <-returned:
		t.Fatalf("InvokeHere returned %v while the call still spins", err)
	default:
	}
	p.Close() // what the engine does to a runaway: the spin ends
	select {
	case err := <-returned:
		if !errors.Is(err, runtime.ErrAnsweredLate) {
			t.Errorf("InvokeHere = %v, want ErrAnsweredLate", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("InvokeHere did not return after Close")
	}
}

// TestInvokeHereDeadlineEdge runs calls whose deadline falls as they
// return, so that the deadline and the call often meet: each gets one
// answer, and a watch whose timer fired is never reused (its late fire
// would answer a later call early).
func TestInvokeHereDeadlineEdge(t *testing.T) {
	quick, err := handler.New("quick", func(_ *sdk.Context, in map[string]any) (map[string]any, error) { return in, nil })
	if err != nil {
		t.Fatal(err)
	}
	var late, onTime int
	for i := range 3000 {
		timeout := time.Duration(i%60) * time.Microsecond
		if i%2 == 1 {
			timeout = time.Minute // a stale fire would be the only way to answer this one late
		}
		call := runtime.NewCall(context.Background(), time.Now(), timeout)
		answered := false
		out, err := runtime.InvokeHere(call, quick, nil, []byte(`{"i":1}`), lateFunc(func(error) {
			if timeout == time.Minute {
				t.Errorf("call %d answered late with a minute to go", i)
			}
			answered = true
		}))
		call.Cancel()
		switch {
		case errors.Is(err, runtime.ErrAnsweredLate) && answered:
			late++
		case err == nil && !answered && string(out) == `{"i":1}`:
			onTime++
		default:
			t.Fatalf("call %d: %s, %v, answered late %v; want one answer", i, out, err, answered)
		}
	}
	t.Logf("%d answered late, %d in time", late, onTime)
}

func TestInvokeHerePanic(t *testing.T) {
	p := load(t, service("boom", "\tpanic(\"boom\")"))
	call := runtime.NewCall(context.Background(), time.Now(), time.Minute)
	defer call.Cancel()
	_, err := runtime.InvokeHere(call, p.Services["boom"], nil, nil, lateFunc(func(error) {}))
	var pe *handler.PanicError
	if !errors.As(err, &pe) || handler.Status(err) != 500 {
		t.Fatalf("InvokeHere = %v, want a PanicError (500)", err)
	}
}

// TestInvokeCall checks that Invoke keeps a Call's deadline without
// making its Done channel.
func TestInvokeCall(t *testing.T) {
	p := load(t, service("spin", "\tfor {\n\t}"))
	defer p.Close()
	call := runtime.NewCall(context.Background(), time.Now(), 50*time.Millisecond)
	defer call.Cancel()
	_, err := runtime.Invoke(call, p.Services["spin"], nil, nil)
	if !errors.Is(err, runtime.ErrDeadline) || handler.Status(err) != 504 {
		t.Fatalf("Invoke = %v, want ErrDeadline (504)", err)
	}
	parent, cancel := context.WithCancel(context.Background())
	call = runtime.NewCall(parent, time.Now(), time.Hour)
	defer call.Cancel()
	cancel()
	if _, err := runtime.Invoke(call, p.Services["spin"], nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Invoke with a cancelled parent = %v, want context.Canceled", err)
	}
}

type key struct{}

func TestCall(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	defer cancelParent()

	call := runtime.NewCall(parent, time.Now(), 30*time.Millisecond)
	if d, ok := call.Deadline(); !ok || time.Until(d) > 30*time.Millisecond {
		t.Errorf("Deadline = %v, %v", d, ok)
	}
	if call.Err() != nil || call.Value(key{}) != "v" {
		t.Errorf("fresh call: Err %v, Value %v", call.Err(), call.Value(key{}))
	}
	<-call.Done() // closes at the deadline
	if !errors.Is(call.Err(), context.DeadlineExceeded) || call.Value(key{}) != "v" {
		t.Errorf("after the deadline: Err %v, Value %v", call.Err(), call.Value(key{}))
	}
	call.Cancel()
	if !errors.Is(call.Err(), context.DeadlineExceeded) {
		t.Errorf("Cancel after the deadline: Err %v", call.Err())
	}

	// Nobody asked for Done: the deadline still shows in Err, and stays.
	call = runtime.NewCall(parent, time.Now(), time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if !errors.Is(call.Err(), context.DeadlineExceeded) {
		t.Errorf("unwatched call after its deadline: Err %v", call.Err())
	}
	call.Cancel()
	if !errors.Is(call.Err(), context.DeadlineExceeded) || call.Value(key{}) != "v" {
		t.Errorf("unwatched call cancelled after its deadline: Err %v, Value %v", call.Err(), call.Value(key{}))
	}
	select {
	case <-call.Done():
	default:
		t.Error("Done of an ended call is not closed")
	}

	// Cancelled before anyone asked for Done.
	call = runtime.NewCall(parent, time.Now(), time.Hour)
	call.Cancel()
	select {
	case <-call.Done():
	default:
		t.Error("Done of a cancelled call is not closed")
	}
	if !errors.Is(call.Err(), context.Canceled) || call.Value(key{}) != "v" {
		t.Errorf("cancelled call: Err %v, Value %v", call.Err(), call.Value(key{}))
	}

	// The parent's end and deadline reach the call.
	call = runtime.NewCall(parent, time.Now(), time.Hour)
	defer call.Cancel()
	done := call.Done()
	cancelParent()
	<-done
	if !errors.Is(call.Err(), context.Canceled) {
		t.Errorf("call of a cancelled parent: Err %v", call.Err())
	}
	soon, cancelSoon := context.WithTimeout(context.Background(), time.Minute)
	defer cancelSoon()
	if d, _ := runtime.NewCall(soon, time.Now(), time.Hour).Deadline(); time.Until(d) > time.Minute {
		t.Errorf("Deadline %v is after the parent's", d)
	}

	// Done asked for from many goroutines while the call is cancelled:
	// every channel they got closes.
	call = runtime.NewCall(context.Background(), time.Now(), time.Hour)
	chans := make([]<-chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range chans {
		wg.Go(func() { chans[i] = call.Done() })
	}
	wg.Go(call.Cancel)
	wg.Wait()
	for _, c := range chans {
		<-c
	}
}
