#!/usr/bin/env bash
# Unpacks Pure-FTPd for the benchmark without installing it: Debian's pure-ftpd package conflicts with vsftpd (both
# provide ftp-server), which the tests need installed. `apt-get download` fetches the .deb, `dpkg -x` unpacks it into
# bench/peers/pure-ftpd/, and shared libraries it links against are installed when missing (plain libraries, no
# conflict). Idempotent; prints the path of the pure-ftpd binary.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=bench/peers/pure-ftpd
bin="$dest/usr/sbin/pure-ftpd"
if [ ! -x "$bin" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # _apt cannot write into a private temporary directory; the download then runs as the caller, which is fine here.
  chmod 0755 "$work"
  if ! (cd "$work" && apt-get download -qq pure-ftpd >/dev/null 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$work" && apt-get download -qq pure-ftpd >/dev/null)
  fi
  mkdir -p "$dest"
  dpkg -x "$work"/pure-ftpd_*.deb "$dest"
fi

# Libraries the binary needs and the machine lacks (libsodium23 is the usual one).
missing=$(ldd "$bin" | awk '/not found/ { print $1 }')
if [ -n "$missing" ]; then
  packages=()
  for lib in $missing; do
    case "$lib" in
      libsodium.so.*) packages+=(libsodium23) ;;
      libcap.so.*) packages+=(libcap2) ;;
      libpam.so.*) packages+=(libpam0g) ;;
      libcrypt.so.*) packages+=(libcrypt1) ;;
      libssl.so.* | libcrypto.so.*) packages+=(libssl3) ;;
      *) echo "bench-peers: pure-ftpd needs $lib and no package is known for it" >&2; exit 1 ;;
    esac
  done
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
echo "$bin"
