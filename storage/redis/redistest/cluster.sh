#!/usr/bin/env bash
# cluster.sh starts and stops local redis-server processes for tailor's
# tests: a Redis Cluster of 3 primaries and 3 replicas, or one standalone
# server, on loopback ports, each node in its own folder under DIR.
#
#   cluster.sh start DIR [PORT x6]     # a cluster; ports default to 7000-7005
#   cluster.sh standalone DIR [PORT]   # one server; port defaults to 6379
#   cluster.sh node DIR PORT           # (re)start the node of DIR/PORT, e.g.
#                                      # one that a test killed
#   cluster.sh stop DIR                # stop every process started in DIR
#
# Every process started is recorded in DIR/<port>/pid (and the watchdog in
# DIR/watchdog.pid); stop signals those PIDs and nothing else, after
# checking that each still is the redis-server this script started. When
# OWNER_PID is set, a watchdog stops the servers once that process has
# exited, so a test binary that dies without cleaning up leaves nothing
# running; when OWNER_REMOVE is set too, the watchdog then removes that
# folder (the servers' files).
#
# The cluster uses a node timeout of 1000 ms, so that a killed primary is
# failed over in a few seconds, and no persistence (save "", no AOF).
# start returns once every node reports cluster_state:ok with all 16384
# slots served and every primary has an online replica (polled with
# redis-cli, at most 60 s). Exit status 3 means a port was taken: pick
# other ports and retry.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	sed -n '2,28p' "$0" >&2
	exit 2
fi
shift 2

node_timeout_ms=1000
deadline_s=60

# log prints a message on stderr.
log() { echo "cluster.sh: $*" >&2; }

# is_ours reports whether PID is alive and is the redis-server of PORT.
is_ours() {
	local pid=$1 port=$2
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "redis-server.*[: ]$port\b"
}

# start_node PORT [cluster|standalone] starts redis-server on PORT in
# DIR/PORT and waits until it answers, as the process it started.
start_node() {
	local port=$1 mode=$2 ndir="$dir/$1"
	mkdir -p "$ndir"
	local args=(--port "$port" --bind 127.0.0.1 --dir "$ndir"
		--logfile "$ndir/redis.log" --daemonize no --save "" --appendonly no
		--repl-diskless-sync yes --repl-diskless-sync-delay 0)
	if [ "$mode" = cluster ]; then
		args+=(--cluster-enabled yes --cluster-config-file nodes.conf
			--cluster-node-timeout "$node_timeout_ms")
	fi
	redis-server "${args[@]}" </dev/null >>"$ndir/redis.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$ndir/pid"
	local end=$((SECONDS + 10))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			if grep -q "Address already in use" "$ndir/redis.log"; then
				log "port $port is taken"
				return 3
			fi
			log "redis-server on port $port exited:"
			tail -5 "$ndir/redis.log" >&2
			return 1
		fi
		# The server answering must be the one started here, not another
		# test's that holds the port.
		if info=$(redis-cli -p "$port" info server 2>/dev/null) &&
			echo "$info" | tr -d '\r' | grep -qx "process_id:$pid"; then
			return 0
		fi
		if [ $SECONDS -ge $end ]; then
			log "redis-server on port $port did not answer within 10 s"
			return 1
		fi
		sleep 0.05
	done
}

# cluster_ok PORT... succeeds when every node reports the cluster ok with
# every slot served and every primary has an online replica.
cluster_ok() {
	local port info repl
	for port in "$@"; do
		info=$(redis-cli -p "$port" cluster info 2>/dev/null | tr -d '\r') || return 1
		echo "$info" | grep -qx 'cluster_state:ok' || return 1
		echo "$info" | grep -qx 'cluster_slots_ok:16384' || return 1
		echo "$info" | grep -qx "cluster_known_nodes:$#" || return 1
		repl=$(redis-cli -p "$port" info replication 2>/dev/null | tr -d '\r') || return 1
		if echo "$repl" | grep -qx 'role:master'; then
			echo "$repl" | grep -q '^slave0:.*state=online' || return 1
		else
			echo "$repl" | grep -qx 'master_link_status:up' || return 1
		fi
	done
}

start_watchdog() {
	[ -n "${OWNER_PID:-}" ] || return 0
	(
		while kill -0 "$OWNER_PID" 2>/dev/null; do sleep 1; done
		"$0" stop "$dir"
		if [ -n "${OWNER_REMOVE:-}" ]; then rm -rf "$OWNER_REMOVE"; fi
	) </dev/null >/dev/null 2>&1 &
	echo $! >"$dir/watchdog.pid"
}

stop_all() {
	local pidfile pid port
	if [ -f "$dir/watchdog.pid" ]; then
		pid=$(cat "$dir/watchdog.pid")
		rm -f "$dir/watchdog.pid"
		# The watchdog is a subshell of this script: stop it unless it is
		# the caller.
		if [ "$pid" != "${BASHPID:-$$}" ] && [ "$pid" != "$PPID" ] && kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
		fi
	fi
	for pidfile in "$dir"/*/pid; do
		[ -f "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		port=$(basename "$(dirname "$pidfile")")
		if is_ours "$pid" "$port"; then
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	local end=$((SECONDS + 10))
	for pidfile in "$dir"/*/pid; do
		[ -f "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		port=$(basename "$(dirname "$pidfile")")
		while is_ours "$pid" "$port"; do
			if [ $SECONDS -ge $end ]; then
				kill -KILL "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.05
		done
		rm -f "$pidfile"
	done
}

case "$cmd" in
start)
	ports=("$@")
	[ ${#ports[@]} -gt 0 ] || ports=(7000 7001 7002 7003 7004 7005)
	if [ ${#ports[@]} -ne 6 ]; then
		log "start wants 6 ports, got ${#ports[@]}"
		exit 2
	fi
	mkdir -p "$dir"
	start_watchdog
	addrs=()
	for port in "${ports[@]}"; do
		status=0
		start_node "$port" cluster || status=$?
		if [ $status -ne 0 ]; then
			stop_all
			exit $status
		fi
		addrs+=("127.0.0.1:$port")
	done
	if ! out=$(redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes 2>&1); then
		log "redis-cli --cluster create failed:"
		echo "$out" >&2
		stop_all
		exit 1
	fi
	end=$((SECONDS + deadline_s))
	until cluster_ok "${ports[@]}"; do
		if [ $SECONDS -ge $end ]; then
			log "the cluster was not ok within $deadline_s s:"
			redis-cli -p "${ports[0]}" cluster nodes >&2 || true
			stop_all
			exit 1
		fi
		sleep 0.1
	done
	;;
standalone)
	port=${1:-6379}
	mkdir -p "$dir"
	start_watchdog
	status=0
	start_node "$port" standalone || status=$?
	if [ $status -ne 0 ]; then
		stop_all
		exit $status
	fi
	;;
node)
	port=${1:?node wants a port}
	if [ -f "$dir/$port/pid" ] && is_ours "$(cat "$dir/$port/pid")" "$port"; then
		log "the node on port $port is running"
		exit 1
	fi
	mode=standalone
	[ -f "$dir/$port/nodes.conf" ] && mode=cluster
	start_node "$port" "$mode"
	;;
stop)
	stop_all
	;;
*)
	log "unknown command $cmd"
	exit 2
	;;
esac
