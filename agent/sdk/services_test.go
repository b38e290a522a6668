package sdk

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewCache(func() time.Time { return now })
	c.Set("a", "x", time.Second)
	c.Set("b", 2, 0)
	if v, ok := c.Get("a"); !ok || v != "x" {
		t.Fatalf("Get a = %v, %v", v, ok)
	}
	now = now.Add(time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("a did not expire at its ttl")
	}
	if v, ok := c.Get("b"); !ok || v != 2 {
		t.Fatalf("Get b = %v, %v; an entry without ttl must stay", v, ok)
	}
	c.Delete("b")
	if _, ok := c.Get("b"); ok || c.Len() != 0 {
		t.Fatal("Delete left b")
	}
}

func TestContextWithoutServices(t *testing.T) {
	c := NewContext(context.Background(), Request{})
	var e *Error
	if err := c.Invoke("x", nil, nil); !errors.As(err, &e) || e.HTTPStatus() != 501 {
		t.Fatalf("Invoke without services = %v, want a 501 *Error", err)
	}
	if _, err := c.InvokeAsync("x", nil); err == nil {
		t.Fatal("InvokeAsync without services succeeded")
	}
	if err := c.Go(func(context.Context) {}); err == nil {
		t.Fatal("Go without services succeeded")
	}
	if c.Cache() != nil {
		t.Fatal("Cache without services is not nil")
	}
}
