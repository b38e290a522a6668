package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// OnReplica is the error of a call for one agent that another live replica
// of the control plane holds. Forwarder sends the call there; a call that
// is not forwarded (it was forwarded once already) reads as
// FailedPrecondition, naming the replica.
type OnReplica struct {
	Replica, Address string
	st               *status.Status
}

func (e *OnReplica) Error() string              { return e.st.Message() }
func (e *OnReplica) GRPCStatus() *status.Status { return e.st }

// MaxMessageBytes bounds one gRPC message: a deploy carries source files.
const MaxMessageBytes = 64 << 20

// forwardedBy is the metadata key of a call one replica forwarded to
// another: the first replica's id. A forwarded call is not forwarded
// again.
const forwardedBy = "weft-forwarded-by"

// Forwarder is the gRPC interceptor that sends a call for an agent held
// by another replica (the handler's OnReplica) to that replica, with the
// caller's token, which that replica checks again: one fleet through any
// replica. Replicas reach each other over TLS, verified with the control
// plane's CA.
type Forwarder struct {
	self  string
	creds credentials.TransportCredentials

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by address
}

// NewForwarder returns the forwarder of the replica self, trusting roots.
func NewForwarder(self string, roots *x509.CertPool) *Forwarder {
	return &Forwarder{self: self, conns: map[string]*grpc.ClientConn{},
		creds: credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots})}
}

// Unary is the unary interceptor. It runs innermost, after the caller's
// rights were checked here.
func (f *Forwarder) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	var on *OnReplica
	if err == nil || !errors.As(err, &on) || on.Replica == f.self || forwarded(ctx) {
		return resp, err
	}
	reply, ferr := newReply(info.FullMethod)
	if ferr != nil {
		return resp, err
	}
	conn, ferr := f.conn(on.Address)
	if ferr != nil {
		return nil, status.Errorf(codes.Unavailable, "%s; it cannot be reached: %v", on.st.Message(), ferr)
	}
	if ferr := conn.Invoke(f.outgoing(ctx), info.FullMethod, req, reply); ferr != nil {
		if status.Code(ferr) == codes.Unavailable {
			return nil, status.Errorf(codes.Unavailable, "%s; it cannot be reached: %s", on.st.Message(), status.Convert(ferr).Message())
		}
		return nil, ferr
	}
	return reply, nil
}

// outgoing is ctx for a call to another replica: the caller's token, and
// the mark of a forwarded call.
func (f *Forwarder) outgoing(ctx context.Context) context.Context {
	out := metadata.Pairs(forwardedBy, f.self)
	for _, a := range metadata.ValueFromIncomingContext(ctx, "authorization") {
		out.Append("authorization", a)
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// Call calls method on the replica at address with the caller's token,
// as a forwarded call: that replica answers for its own agents only.
func (f *Forwarder) Call(ctx context.Context, address, method string, req, reply proto.Message) error {
	conn, err := f.conn(address)
	if err != nil {
		return err
	}
	return conn.Invoke(f.outgoing(ctx), method, req, reply)
}

// Stream opens the server stream method on the replica at address with
// req, as a forwarded call, and waits for its header, at most within: an
// error means the replica did not start it. A nil header means the stream
// ended at once; its first RecvMsg says why. stop ends the stream.
func (f *Forwarder) Stream(ctx context.Context, address, method string, req proto.Message, within time.Duration) (cs grpc.ClientStream, md metadata.MD, stop func(), err error) {
	conn, err := f.conn(address)
	if err != nil {
		return nil, nil, nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	if cs, err = conn.NewStream(f.outgoing(sctx), &grpc.StreamDesc{ServerStreams: true}, method); err == nil {
		if err = cs.SendMsg(req); err == nil {
			err = cs.CloseSend()
		}
	}
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	late := time.AfterFunc(within, stop)
	md, err = cs.Header()
	if !late.Stop() {
		err = fmt.Errorf("no answer within %v", within)
	}
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return cs, md, stop, nil
}

// Self is this replica's id.
func (f *Forwarder) Self() string { return f.self }

// forwarded says whether the call of ctx was forwarded by another
// replica.
func forwarded(ctx context.Context) bool {
	return len(metadata.ValueFromIncomingContext(ctx, forwardedBy)) > 0
}

// conn is the connection to the replica at address, made once.
func (f *Forwarder) conn(address string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.conns[address]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient(address, grpc.WithTransportCredentials(f.creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		// A replica that vanished is noticed by a tail relayed from it.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}))
	if err != nil {
		return nil, err
	}
	f.conns[address] = c
	return c, nil
}

// Close closes the connections to the other replicas.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for a, c := range f.conns {
		c.Close()
		delete(f.conns, a)
	}
}

// newReply is a new response message of the method fullMethod
// ("/package.Service/Method").
func newReply(fullMethod string) (proto.Message, error) {
	svc, method, ok := splitMethod(fullMethod)
	if !ok {
		return nil, fmt.Errorf("method %q", fullMethod)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, err
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok || sd.Methods().ByName(protoreflect.Name(method)) == nil {
		return nil, fmt.Errorf("method %q", fullMethod)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(sd.Methods().ByName(protoreflect.Name(method)).Output().FullName())
	if err != nil {
		return nil, err
	}
	return mt.New().Interface(), nil
}

// splitMethod splits "/package.Service/Method".
func splitMethod(full string) (svc, method string, ok bool) {
	i := strings.LastIndex(full, "/")
	if !strings.HasPrefix(full, "/") || i <= 1 || i == len(full)-1 {
		return "", "", false
	}
	return full[1:i], full[i+1:], true
}
