#!/usr/bin/env bash
# run.sh starts a local Weft for trying it out: a control plane on an embedded
# SQLite file and one agent, both under .run/, then deploys the hello example,
# gives it a channel and prints how to call it. Ctrl-C stops both. `make run`
# builds the binaries and runs this; running it again reuses the database.
#
# Environment (all optional):
#   WEFT_RUN_DIR    where the database, agent state and logs go (default .run)
#   WEFT_RUN_ADDR   control plane gRPC address (default 127.0.0.1:7400)
#   WEFT_RUN_HTTP   agent HTTP address (default 127.0.0.1:8080)
#   WEFT_RUN_AGENT  agent id (default local)
#   WEFT_RUN_BIN    directory of the binaries (default bin)
set -euo pipefail

cd "$(dirname "$0")/.."

run_dir=${WEFT_RUN_DIR:-.run}
cp_addr=${WEFT_RUN_ADDR:-127.0.0.1:7400}
http_addr=${WEFT_RUN_HTTP:-127.0.0.1:8080}
agent_id=${WEFT_RUN_AGENT:-local}
bin=${WEFT_RUN_BIN:-bin}
wait_seconds=30
stop_seconds=15

# The control plane writes its CA and its first admin token into the run
# directory on its first start; weftctl reads them from there.
ca_file=$run_dir/weft-ca.pem
token_file=$run_dir/weft-admin.token
ctl() { WEFT_ADDR=$cp_addr WEFT_CA=$ca_file WEFT_TOKEN=$(cat "$token_file" 2>/dev/null) "$bin/weftctl" "$@"; }
die() { echo "run: $*" >&2; exit 1; }

for b in weft-controlplane weft-agent weftctl; do
	[[ -x $bin/$b ]] || die "$bin/$b is missing; run make run (or make build first)"
done

# listening says whether something accepts TCP connections on host:port.
listening() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$cp_addr" "$http_addr"; do
	if listening "$addr"; then
		die "$addr is already in use (another make run?); stop it, or set WEFT_RUN_ADDR / WEFT_RUN_HTTP"
	fi
done

mkdir -p "$run_dir"
cp_log=$run_dir/controlplane.log
agent_log=$run_dir/agent.log
cp_pid=
agent_pid=

# stop sends SIGINT to a process and waits for it, killing it when it does
# not exit in time.
stop() {
	local name=$1 pid=$2
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -INT "$pid" 2>/dev/null || true
	for ((i = 0; i < stop_seconds * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "run: $name did not stop within ${stop_seconds}s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || echo "run: $name exited with status $? (see its log)" >&2
}

shutdown() {
	trap - INT TERM EXIT
	echo
	echo "run: stopping"
	stop "the agent" "$agent_pid"
	stop "the control plane" "$cp_pid"
	echo "run: stopped; logs in $cp_log and $agent_log"
}
trap 'shutdown; exit 0' INT TERM
trap 'shutdown' EXIT

# Each process gets its own session (setsid), so a Ctrl-C on the terminal
# reaches only this script, which forwards one SIGINT to each in turn.
if [[ -e $run_dir/weft.db && ! -e $token_file ]]; then
	die "$token_file is missing, and the database in $run_dir holds its token already; restore the file, or remove $run_dir to start afresh"
fi
setsid "$bin/weft-controlplane" --listen "$cp_addr" --db "sqlite:$run_dir/weft.db" \
	--ca-file "$ca_file" --admin-token-file "$token_file" >>"$cp_log" 2>&1 &
cp_pid=$!

# await runs a command every 0.2s until it succeeds, failing after
# $wait_seconds or when process $2 died.
await() {
	local what=$1 pid=$2
	shift 2
	for ((i = 0; i < wait_seconds * 5; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		kill -0 "$pid" 2>/dev/null || die "$what: the process exited; see its log"
		sleep 0.2
	done
	die "$what: not done after ${wait_seconds}s"
}

await "control plane at $cp_addr (log: $cp_log)" "$cp_pid" ctl agent list
echo "run: control plane serving on $cp_addr (log: $cp_log)"

# The agent enrolls on its first start with a join token, trusting the CA
# file; later starts find their certificate in the state directory.
join=()
if [[ ! -e $run_dir/agent-state/identity/agent.crt ]]; then
	secret=$(ctl -o json agent token create --labels "env=local" | sed -n 's/.*"secret": *"\([^"]*\)".*/\1/p')
	[[ -n $secret ]] || die "could not make a join token for the agent (see $cp_log)"
	join=(--ca "$ca_file")
	export WEFT_JOIN_TOKEN=$secret
fi
setsid "$bin/weft-agent" --id "$agent_id" --controlplane "$cp_addr" --http "$http_addr" \
	--state-dir "$run_dir/agent-state" "${join[@]}" >>"$agent_log" 2>&1 &
agent_pid=$!
unset WEFT_JOIN_TOKEN

# agent_is says whether the agent's record matches a JSON "field": value.
agent_is() {
	ctl -o json agent get "$agent_id" | tr -d ' \n' | grep -q "\"$1\":$2"
}
await "agent $agent_id connects (log: $agent_log)" "$agent_pid" agent_is connected true
echo "run: agent $agent_id connected, serving channels on $http_addr (log: $agent_log)"

ctl deploy deploy/examples/hello
if ctl channel get hello >/dev/null 2>&1; then
	echo "run: channel hello exists"
else
	ctl channel create hello --path /api/hello --service hello.greet --method POST
fi
await "agent $agent_id in sync (log: $agent_log)" "$agent_pid" agent_is sync_status '"SYNC_STATUS_IN_SYNC"'

# A weftctl context for this control plane, so that weftctl works from any
# terminal; it becomes the current one only when there is none.
use=()
if ! "$bin/weftctl" context list -o json 2>/dev/null | tr -d ' \n' | grep -q '"current_context":"[^"]'; then
	use=(--use)
fi
if "$bin/weftctl" context add make-run --addr "$cp_addr" --ca "$ca_file" --token-file "$token_file" --replace "${use[@]}" >/dev/null; then
	context_note="weftctl has a context make-run for it (weftctl context list)"
	[[ ${#use[@]} -gt 0 ]] || context_note="$context_note; select it with: export WEFT_CONTEXT=make-run"
else
	context_note="weftctl could not save a context; use the variables below"
fi

cat <<EOF

Weft is running. Call the hello service through its channel:

  curl -s -X POST http://$http_addr/api/hello -H 'Content-Type: application/json' -d '{"name":"Ada"}'

Drive it with weftctl:

  $context_note
  or: export WEFT_ADDR=$cp_addr WEFT_CA=$ca_file WEFT_TOKEN=\$(cat $token_file)
  bin/weftctl agent list
  bin/weftctl channel list
  bin/weftctl invoke hello.greet --data '{"name":"Ada"}'

Logs: $cp_log, $agent_log. Press Ctrl-C to stop.
EOF

# Wait until Ctrl-C, or until either process dies on its own.
set +e
wait -n "$cp_pid" "$agent_pid"
status=$?
set -e
echo "run: a process exited on its own (status $status); see the logs" >&2
exit 1
