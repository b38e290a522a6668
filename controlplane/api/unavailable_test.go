package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestDatabaseUnavailable holds the one rule for a database that cannot be
// reached: the client gets Unavailable and what failed, never the
// database's address, user or name; the log gets the error itself.
func TestDatabaseUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, dialErr := net.Dial("tcp", addr)
	if dialErr == nil {
		t.Fatalf("dial %s: connected to a closed port", addr)
	}
	denied := &gomysql.MySQLError{Number: 1045, Message: "Access denied for user 'weftuser'@'10.1.2.3' to database 'weftdb'"}
	secret := []string{addr, "127.0.0.1", "weftuser", "10.1.2.3", "weftdb"}

	tests := []struct {
		name    string
		handler error // what the handler returns
		want    string
	}{
		{"storeError of a refused connection", storeError("list channels", fmt.Errorf("list channels: %w", dialErr)),
			"list channels: the database is unavailable; try again"},
		{"storeError of denied access", storeError("deploy", denied), "deploy: the database is unavailable; try again"},
		{"the store's error as it is", fmt.Errorf("read revision: %w", gomysql.ErrInvalidConn), "the database is unavailable; try again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testenv.LogBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			st := status.Convert(databaseError(log, "/weft.admin.v1.X/Y", tt.handler))
			if st.Code() != codes.Unavailable || st.Message() != tt.want {
				t.Errorf("status = %v %q, want Unavailable %q", st.Code(), st.Message(), tt.want)
			}
			for _, s := range secret {
				if strings.Contains(st.Message(), s) {
					t.Errorf("the client is told %q: %q", s, st.Message())
				}
			}
			if !strings.Contains(logs.String(), "the database is unavailable") || !strings.Contains(logs.String(), "/weft.admin.v1.X/Y") {
				t.Errorf("log = %q, want the error and the method", logs.String())
			}
		})
	}

	t.Run("storeError alone, as an in-process caller sees it", func(t *testing.T) {
		st := status.Convert(storeError("deploy", denied))
		if st.Code() != codes.Unavailable || st.Message() != "deploy: the database is unavailable; try again" {
			t.Errorf("status = %v %q", st.Code(), st.Message())
		}
	})
	t.Run("the log holds the address", func(t *testing.T) {
		var logs testenv.LogBuffer
		_ = databaseError(slog.New(slog.NewTextHandler(&logs, nil)), "/m", storeError("list channels", dialErr))
		if !strings.Contains(logs.String(), addr) {
			t.Errorf("log = %q, want the address %s", logs.String(), addr)
		}
	})
	t.Run("other errors pass", func(t *testing.T) {
		err := storeError("get channel", fmt.Errorf("channel %q: %w", "x", store.ErrNotFound))
		if got := databaseError(slog.New(slog.DiscardHandler), "/m", err); got != err {
			t.Errorf("databaseError changed %v to %v", err, got)
		}
	})
	t.Run("a deadline names no address", func(t *testing.T) {
		err := storeError("list channels", fmt.Errorf("dial tcp %s: %w", addr, context.DeadlineExceeded))
		st := status.Convert(err)
		if st.Code() != codes.DeadlineExceeded || strings.Contains(st.Message(), addr) {
			t.Errorf("status = %v %q, want DeadlineExceeded without the address", st.Code(), st.Message())
		}
	})
}
