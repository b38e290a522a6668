package outgoing

import (
	"context"
	"errors"

	"github.com/weft-dev/weft/agent/sdk"
)

// ForService returns c as services see it through sdk.Context.Outgoing:
// its errors become *sdk.OutgoingError, which carry the status and a body
// excerpt and answer the service's own caller 502 or 504.
func (c *Conn) ForService() sdk.OutgoingConn { return serviceConn{c} }

// serviceConn adapts a Conn to sdk.OutgoingConn.
type serviceConn struct{ c *Conn }

func (s serviceConn) Format() string { return s.c.cfg.Format }

func (s serviceConn) Do(ctx context.Context, call sdk.OutgoingCall) (*sdk.OutgoingResponse, error) {
	resp, err := s.c.Do(ctx, call.Params, call.Query, call.Body)
	var out *sdk.OutgoingResponse
	if resp != nil {
		out = &sdk.OutgoingResponse{Status: resp.Status, Header: resp.Header, Body: resp.Body}
	}
	var se *StatusError
	var ce *CallError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &se):
		return out, &sdk.OutgoingError{Connection: se.Name, Method: se.Method, URL: se.URL, Status: se.Status, Excerpt: se.Excerpt}
	case errors.As(err, &ce):
		return out, &sdk.OutgoingError{Connection: ce.Name, Method: ce.Method, URL: ce.URL, Excerpt: ce.Err.Error(), Timeout: ce.Timeout()}
	default:
		// A path param missing or malformed: the service's own mistake.
		return out, err
	}
}
