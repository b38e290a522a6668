package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// httpClient is shared by the HTTP helpers; it keeps connections alive like a
// real client would.
var httpClient = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	},
}

// Response is an HTTP response with its body read.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the response headers.
	Header http.Header
	// Body is the whole body.
	Body []byte
}

// String sums up the response for failure messages.
func (r Response) String() string {
	return fmt.Sprintf("HTTP %d: %s", r.Status, strings.TrimSpace(string(r.Body)))
}

// Post sends body to url as application/json and reads the whole response.
// It does not touch a testing.T, so goroutines may call it.
func Post(ctx context.Context, url, body string) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return Response{}, fmt.Errorf("post %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("post %s: %w", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("post %s: read body: %w", url, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// PostJSON sends body to url as application/json and returns the response,
// failing the test when the request cannot be made (any HTTP status is
// returned, not judged).
func PostJSON(t testing.TB, url, body string) Response {
	t.Helper()
	resp, err := Post(context.Background(), url, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
