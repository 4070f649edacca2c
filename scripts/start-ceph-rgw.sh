#!/usr/bin/env bash
# A throwaway single-node Ceph for the tests and benchmarks: one monitor, one OSD keeping its objects in memory
# (memstore), and radosgw answering S3 on a loopback port, with `auth none`. Started as root without systemd from
# Debian's ceph-mon, ceph-osd, radosgw and ceph-common (scripts/install-test-deps.sh installs them).
#
#   start-ceph-rgw.sh start DIR [RGW_PORT] [MON_PORT]   prints FTPSD_TEST_S3_* lines (shell assignments) when S3 answers
#   start-ceph-rgw.sh stop DIR                           stops every daemon of DIR and removes DIR
#
# A start that does not answer within CEPH_START_TIMEOUT_S (default 90) seconds is stopped, cleaned up and tried
# again once from scratch; the exit status is non-zero when that fails too. DIR/log keeps the daemons' logs until stop.
set -euo pipefail

mode=${1:-}
DIR=$(realpath -m "${2:-}")
[ -n "${2:-}" ] || { echo "usage: $0 start|stop DIR [RGW_PORT] [MON_PORT]" >&2; exit 2; }
RGW_PORT=${3:-7480}
MON_PORT=${4:-6789}
TIMEOUT_S=${CEPH_START_TIMEOUT_S:-90}
ACCESS_KEY=FTPSDTESTACCESSKEY
SECRET_KEY=ftpsd-test-secret-key
PATH="$PATH:/usr/sbin:/sbin"

stop() {
  local pids=() pid f
  # Only daemons of this DIR: each was started with -c DIR/ceph.conf, and a pid file may outlive its process.
  for f in "$DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null) || continue
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-c $DIR/ceph.conf" && pids+=("$pid")
  done
  if [ "${#pids[@]}" -gt 0 ]; then
    # A second for a clean exit, then SIGKILL: memstore keeps nothing worth a slower shutdown.
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 10); do
      local alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" -eq 0 ] && break
      sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  fi
  rm -rf "$DIR"
}

write_conf() {
  local fsid=$1
  cat >"$DIR/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$MON_PORT
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms bind ipv6 = false
ms bind msgr2 = false
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = false
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
[mon]
mon data = $DIR/mon/\$id
mon data avail warn = 2
mon data avail crit = 1
paxos propose interval = 0.05
paxos min wait = 0.01
[osd]
osd data = $DIR/osd/\$id
osd objectstore = memstore
memstore device bytes = 2147483648
osd op num shards = 1
osd op num threads per shard = 2
# At boot the OSD updates its crush location and device class itself, which races with auth none ("wrong fsid");
# the start below adds it to the crush map instead.
osd crush update on start = false
osd class update on start = false
[client.rgw.gw]
# tcp_nodelay: without it a response with a body (GET, a listing) goes out as two writes and the second waits for the
# client's delayed ACK, 40 ms per request (docs/storage-s3.md).
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw dns name = localhost
rgw thread pool size = 64
CONF
}

# Waits until `check` succeeds, at most until the deadline; false when it passed.
wait_for() {
  local deadline=$1
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}

osd_up() { ceph -c "$DIR/ceph.conf" --connect-timeout 5 osd dump 2>/dev/null | grep -q '^osd.0 up'; }
rgw_answers() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$RGW_PORT/"; }

start_once() {
  local deadline=$((SECONDS + TIMEOUT_S))
  rm -rf "$DIR"
  mkdir -p "$DIR"/{mon/a,osd/0,run,log,rgw,crash}
  local fsid osd_uuid id
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"
  export CEPH_CONF=$DIR/ceph.conf
  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$DIR/monmap" >"$DIR/log/mon-mkfs.log" 2>&1
  ceph-mon -c "$DIR/ceph.conf" -i a || return 1
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  id=$(timeout 30 ceph --connect-timeout 20 osd new "$osd_uuid") || return 1
  [ "$id" = 0 ] || return 1
  ceph osd crush add osd.0 1.0 root=default host=localhost >/dev/null 2>&1 || return 1
  ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.log" 2>&1 || return 1
  # The first ceph-osd start sometimes exits at once; a second one comes up.
  local attempt
  for attempt in 1 2 3; do
    ceph-osd -c "$DIR/ceph.conf" -i 0 && break
    [ "$attempt" -lt 3 ] || return 1
    sleep 1
  done
  wait_for "$deadline" osd_up || return 1
  radosgw -c "$DIR/ceph.conf" -n client.rgw.gw || return 1
  wait_for "$deadline" rgw_answers || return 1
  # The user (and with it the pools radosgw creates) may need a moment after the first answer.
  wait_for "$deadline" radosgw-admin user create --uid=ftpsd-test --display-name=ftpsd-test \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" || return 1
}

case "$mode" in
  start)
    [ "$(id -u)" -eq 0 ] || { echo "start-ceph-rgw: Ceph's daemons are started as root" >&2; exit 1; }
    command -v radosgw >/dev/null || { echo "start-ceph-rgw: radosgw missing: run scripts/install-test-deps.sh" >&2; exit 1; }
    for try in 1 2; do
      if start_once; then
        echo "FTPSD_TEST_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT"
        echo "FTPSD_TEST_S3_ACCESS_KEY=$ACCESS_KEY"
        echo "FTPSD_TEST_S3_SECRET_KEY=$SECRET_KEY"
        echo "FTPSD_TEST_S3_DIR=$DIR"
        exit 0
      fi
      echo "start-ceph-rgw: attempt $try did not answer S3 in ${TIMEOUT_S}s (logs: $(ls "$DIR/log" 2>/dev/null | tr '\n' ' '))" >&2
      tail -n 5 "$DIR"/log/*.log >&2 2>/dev/null || true
      stop
    done
    exit 1
    ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR [RGW_PORT] [MON_PORT]" >&2; exit 2 ;;
esac
