//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// notifyTimeout bounds the wait for one notification; it bounds a hang, it
// does not measure speed.
const notifyTimeout = 30 * time.Second

// notification is one message a process sent to $NOTIFY_SOCKET.
type notification struct {
	pid  int32
	text string
}

// notifySocket is a unix datagram socket like the one systemd gives a
// Type=notify unit in $NOTIFY_SOCKET. It keeps every message with the pid of
// its sender, which the kernel vouches for (SO_PASSCRED), as systemd reads
// it for NotifyAccess=main.
type notifySocket struct {
	path string

	mu   sync.Mutex
	msgs []notification
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short directory: a socket's path holds at most 108 bytes.
	dir, err := os.MkdirTemp("", "weft-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &notifySocket{path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on %s: %v", s.path, err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sockErr error
	if err := raw.Control(func(fd uintptr) {
		sockErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil || sockErr != nil {
		t.Fatalf("set SO_PASSCRED: %v %v", err, sockErr)
	}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			pid := int32(-1)
			if cmsgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cmsgs) > 0 {
				if cred, err := syscall.ParseUnixCredentials(&cmsgs[0]); err == nil {
					pid = cred.Pid
				}
			}
			s.mu.Lock()
			for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				s.msgs = append(s.msgs, notification{pid: pid, text: line})
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// await waits until the socket has received text, and checks that the
// process with pid sent it and everything before it.
func (s *notifySocket) await(t *testing.T, who string, pid int, text string) {
	t.Helper()
	testenv.Await(t, notifyTimeout, fmt.Sprintf("%s sends %s to $NOTIFY_SOCKET", who, text), func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return slices.ContainsFunc(s.msgs, func(m notification) bool { return m.text == text }), s.describe()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if int(m.pid) != pid {
			t.Errorf("%s: %q came from pid %d, not the main process %d; systemd drops it under NotifyAccess=main", who, m.text, m.pid, pid)
		}
	}
}

// texts returns the messages received so far, in order.
func (s *notifySocket) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var texts []string
	for _, m := range s.msgs {
		texts = append(texts, m.text)
	}
	return texts
}

// describe is for failure messages; s.mu is held.
func (s *notifySocket) describe() string {
	if len(s.msgs) == 0 {
		return "nothing"
	}
	var b strings.Builder
	for i, m := range s.msgs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q from pid %d", m.text, m.pid)
	}
	return b.String()
}

// TestSystemdNotify checks what the units' Type=notify and NotifyAccess=main
// rely on: each binary, from its main process, tells $NOTIFY_SOCKET
// READY=1 once it serves and STOPPING=1 when SIGTERM starts its graceful
// stop, in that order and once each. Without READY=1, systemd would fail the
// unit's start after its timeout.
func TestSystemdNotify(t *testing.T) {
	cpSock := listenNotify(t)
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN, testenv.WithEnv("NOTIFY_SOCKET="+cpSock.path))
	cpSock.await(t, "the control plane", cp.PID(), "READY=1")

	agentSock := listenNotify(t)
	agent := testenv.StartAgent(t, cp, "notify-1", testenv.WithEnv("NOTIFY_SOCKET="+agentSock.path))
	agentSock.await(t, "the agent", agent.PID(), "READY=1")

	agentPID := agent.PID()
	agent.Stop(t)
	agentSock.await(t, "the agent", agentPID, "STOPPING=1")

	cpPID := cp.PID()
	cp.Stop(t)
	cpSock.await(t, "the control plane", cpPID, "STOPPING=1")

	// Other messages (such as STATUS=) may come between; these two come
	// once each, in this order.
	want := []string{"READY=1", "STOPPING=1"}
	for who, s := range map[string]*notifySocket{"the control plane": cpSock, "the agent": agentSock} {
		got := slices.DeleteFunc(s.texts(), func(text string) bool { return !slices.Contains(want, text) })
		if !slices.Equal(got, want) {
			t.Errorf("%s sent %q to $NOTIFY_SOCKET, want %q", who, s.texts(), want)
		}
	}
}
