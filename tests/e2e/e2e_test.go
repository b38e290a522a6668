// Package e2e tests Weft end to end: real weft-controlplane, weft-agent,
// weftctl and grpcurl binaries on every store backend, through the acceptance
// list of the foundation: deploy, channels, hot swap, refusal of broken code,
// catching up, reflection, and bad input.
package e2e

import (
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/tests/testenv"
)

// syncTimeout is how soon every connected agent must ACK a deploy: the
// acceptance criterion of the foundation, not a guess at speed.
const syncTimeout = 2 * time.Second

// reconnectTimeout bounds how long an agent that starts again, or whose
// control plane restarted, may take to connect and catch up (its reconnect
// backoff included).
const reconnectTimeout = 30 * time.Second

func TestMain(m *testing.M) { testenv.Main(m) }

// TestFoundation starts one control plane and two agents per backend and
// walks them through the acceptance list. The steps build on each other
// (deploy, then channel, then hot swap...), so the first failing step ends
// the backend's run.
func TestFoundation(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.DSN)
			runSteps(t, []step{
				{"deploy reaches both agents", e.deployReachesAgents},
				{"channel serves JSON on every agent", e.channelServesJSON},
				{"hot swap without restart or failed request", e.hotSwap},
				{"compile error is refused", e.compileErrorRefused},
				{"agent down during deploy catches up", e.agentCatchesUp},
				{"grpcurl uses reflection and health", e.grpcurl},
				{"bad input is refused and changes nothing", e.badInput},
				{"agents keep serving while the control plane restarts", e.controlPlaneRestart},
			})
		})
	}
}
