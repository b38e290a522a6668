package cpdial

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/weft-dev/weft/tests/testenv"
)

func TestAddresses(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  []string
		err   string
	}{
		{value: "127.0.0.1:7400", want: []string{"127.0.0.1:7400"}},
		{value: "dns:///cp.example:7400", want: []string{"dns:///cp.example:7400"}},
		{value: "a.example:7400, b.example:7400", want: []string{"a.example:7400", "b.example:7400"}},
		{value: "a:1,,b:2", err: `an empty address`},
		{value: "", err: `an empty address`},
		{value: "a:1,dns:///b:2", err: `"dns:///b:2": in a list each address is host:port`},
		{value: "a:1,b", err: `"b": in a list each address is host:port`},
	} {
		got, err := Addresses(tt.value)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Addresses(%q) = %v, %v; want an error with %q", tt.value, got, err, tt.err)
		case tt.err == "" && (err != nil || strings.Join(got, " ") != strings.Join(tt.want, " ")):
			t.Errorf("Addresses(%q) = %q, %v; want %q", tt.value, got, err, tt.want)
		}
	}
}

// replica serves gRPC health on a loopback port, reporting the service
// named after it as serving, so that a caller can tell which it reached.
func replica(t *testing.T, name string) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, h)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), srv.Stop
}

// reached says whether a call through conn now reaches the replica name.
func reached(conn *grpc.ClientConn, name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: name})
	return err == nil
}

// TestFailover dials two replicas: the connection keeps to the first, and
// when that one is gone it moves to the second; a first address that
// refuses connections from the start is passed over.
func TestFailover(t *testing.T) {
	a, stopA := replica(t, "a")
	b, _ := replica(t, "b")
	conn, err := Dial(a+","+b, time.Second, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !reached(conn, "a") {
		t.Fatal("the first replica was not reached")
	}
	stopA()
	testenv.Await(t, 10*time.Second, "the second replica reached after the first stopped", func() (bool, string) {
		return reached(conn, "b"), conn.GetState().String()
	})

	// A dead first address.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	conn2, err := Dial(dead+","+b, time.Second, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	testenv.Await(t, 10*time.Second, "the second replica reached past a dead first address", func() (bool, string) {
		return reached(conn2, "b"), conn2.GetState().String()
	})
}
