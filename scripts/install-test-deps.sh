#!/usr/bin/env bash
# Installs the programs the test suite drives as real peers (FTPS clients, vsftpd, the Pebble ACME test server)
# when any is missing. Idempotent and silent when everything is already there.
set -euo pipefail

# command name -> Debian package that provides it
declare -A needed=(
  [lftp]=lftp
  [curl]=curl
  [vsftpd]=vsftpd
  [pebble]=pebble
  [pebble-challtestsrv]=pebble
  [openssl]=openssl
  [python3]=python3
  [haproxy]=haproxy
  # FileZilla driven through its window on a private X server: Xvfb, xdotool (clicks, keys), import (screenshots).
  [filezilla]=filezilla
  [Xvfb]=xvfb
  [xdotool]=xdotool
  [import]=imagemagick
  [rclone]=rclone
  # The web admin's browser test drives Debian's Chromium through puppeteer-core (no browser download).
  [chromium]=chromium
  [java]=default-jdk-headless
  [javac]=default-jdk-headless
  # A throwaway single-node Ceph whose radosgw is the S3 server of the object-storage tests (scripts/start-ceph-rgw.sh).
  [ceph-mon]=ceph-mon
  [ceph-osd]=ceph-osd
  [radosgw]=radosgw
  [ceph]=ceph-common
)
# file the tests need -> Debian package that provides it (libraries, which put no command on the PATH)
declare -A needed_files=(
  [/usr/share/java/commons-net.jar]=libcommons-net-java
)
# vsftpd and haproxy live in /usr/sbin, which is not on every user's PATH.
PATH="$PATH:/usr/sbin:/sbin"

missing=()
for cmd in "${!needed[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needed[$cmd]}")
done
for file in "${!needed_files[@]}"; do
  [ -e "$file" ] || missing+=("${needed_files[$file]}")
done
# PostgreSQL for the store tests: initdb and pg_ctl live outside PATH, in /usr/lib/postgresql/VERSION/bin.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
# De-duplicate (pebble provides two commands).
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "install-test-deps: missing ${packages[*]} and not root (no sudo): install them with apt-get" >&2
  exit 1
fi

echo "install-test-deps: installing ${packages[*]}" >&2

# Debian's postinst would start vsftpd as a system service on port 21; the tests start their own instances on
# loopback high ports. A policy-rc.d that exits 101 tells invoke-rc.d not to start anything during the install.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 0755 "$policy"
  own_policy=1
fi
cleanup() {
  if [ "$own_policy" -eq 1 ]; then "${as_root[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT

# The JDK's postinst registers man pages with update-alternatives; Debian's slim images drop /usr/share/man, and the
# registration then fails unless the directory exists.
if printf '%s\n' "${packages[@]}" | grep -q jdk; then
  "${as_root[@]}" mkdir -p /usr/share/man/man1
fi

log=$(mktemp)
if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
   ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >>"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "install-test-deps: apt-get failed" >&2
  exit 1
fi
rm -f "$log"

# If a vsftpd daemon started anyway (systemd without policy-rc.d), stop it: nothing here should listen on port 21.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  "${as_root[@]}" systemctl disable --now vsftpd >/dev/null 2>&1 || true
fi
if command -v pgrep >/dev/null 2>&1; then
  for pid in $(pgrep -x vsftpd || true); do
    # Only the system service: started with no arguments or with /etc/vsftpd.conf.
    args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    case "$args" in
      "/usr/sbin/vsftpd " | "/usr/sbin/vsftpd /etc/vsftpd.conf ") "${as_root[@]}" kill "$pid" 2>/dev/null || true ;;
    esac
  done
fi

for cmd in "${!needed[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "install-test-deps: $cmd still missing after installing ${packages[*]}" >&2
    exit 1
  fi
done
for file in "${!needed_files[@]}"; do
  if [ ! -e "$file" ]; then
    echo "install-test-deps: $file still missing after installing ${packages[*]}" >&2
    exit 1
  fi
done
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  echo "install-test-deps: initdb still missing after installing ${packages[*]}" >&2
  exit 1
fi
