#!/usr/bin/env bash
# Three okserve instances behind HAProxy on loopback, to watch a drain by hand.
#
#   examples/haproxy/run.sh            # Ctrl-C (or SIGTERM to this script) stops everything
#
# Each instance is started again whenever it exits, so `kill -TERM <pid>` of one (the PIDs
# are printed, and kept in the run folder) shows the whole sequence: /ready says 503,
# HAProxy takes it out, the drain delay ends, it drains and exits, it comes back, HAProxy
# puts it back. See docs/running-many.md.
#
# Environment: OKSERVE (the binary, default build/release/okserve), LB_BIND
# (127.0.0.1:8000), PORTS ("8081 8082 8083"), ADMIN_PORTS ("9081 9082 9083"), DRAIN_DELAY (1s).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
okserve=${OKSERVE:-$root/build/release/okserve}
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
read -r -a ports <<<"${PORTS:-8081 8082 8083}"
read -r -a admins <<<"${ADMIN_PORTS:-9081 9082 9083}"
delay=${DRAIN_DELAY:-1s}
[[ -x $okserve ]] || { echo "run.sh: no $okserve (run make first)" >&2; exit 1; }
[[ -x $haproxy ]] || { echo "run.sh: haproxy is not installed (apt-get install haproxy)" >&2; exit 1; }

run=$(mktemp -d "${TMPDIR:-/tmp}/okserve-haproxy.XXXXXX")
export LB_BIND=${LB_BIND:-127.0.0.1:8000} LB_SOCK=$run/haproxy.sock
for i in 1 2 3; do
  export "LB_I$i=127.0.0.1:${ports[i-1]}" "LB_A$i=${admins[i-1]}"
done

# Starts instance $1 again each time it exits, until the run folder says stop.
supervise() {
  local name=i$1 port=${ports[$1-1]} admin=${admins[$1-1]}
  while [[ ! -e $run/stop ]]; do
    "$okserve" --host 127.0.0.1 --port "$port" --admin "127.0.0.1:$admin" \
      --drain-delay "$delay" --instance-name "$name" >>"$run/$name.log" 2>&1 &
    echo $! >"$run/$name.pid"
    echo "run.sh: $name pid $! on 127.0.0.1:$port, /ready on 127.0.0.1:$admin"
    wait $!
    sleep 0.2
  done
}

stop() {
  trap - INT TERM EXIT
  touch "$run/stop"
  [[ -n ${hp:-} ]] && kill -TERM "$hp" 2>/dev/null
  for i in 1 2 3; do
    [[ -s $run/i$i.pid ]] && kill -TERM "$(cat "$run/i$i.pid")" 2>/dev/null
  done
  wait
  grep -h 'shutdown:' "$run"/i?.log
  rm -rf "$run"
  exit 0
}
trap stop INT TERM EXIT

for i in 1 2 3; do supervise "$i" & done
"$haproxy" -db -f "$here/haproxy.cfg" &
hp=$!
echo "run.sh: HAProxy on http://$LB_BIND/ (logs and PIDs in $run)"
echo "run.sh: try  kill -TERM \$(cat $run/i2.pid)  while  curl -si http://$LB_BIND/  runs in a loop"
wait "$hp"
