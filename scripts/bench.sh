#!/usr/bin/env bash
# `npm run bench`: builds the server and runs the side-by-side benchmark against vsftpd and Pure-FTPd (see
# bench/README.md).
# Not part of `npm test`. Arguments are passed on: npm run bench -- --rounds 5 --scenarios a,b
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/prepare-build.sh
# The bench sources are not in either tsconfig; check them with the same strictness.
npx tsc --noEmit --strict --target ES2022 --module NodeNext --moduleResolution NodeNext --types node \
  --skipLibCheck --noImplicitOverride bench/*.ts

if [ "$(id -u)" -ne 0 ]; then
  echo "bench: vsftpd and pure-ftpd switch to system users; run as root or pass --servers ftpsd" >&2
else
  # Pure-FTPd unpacked beside the installed vsftpd (the two packages conflict).
  bash scripts/bench-peers.sh >/dev/null
fi
mkdir -p bench/results
exec node --import tsx bench/run.ts --json "bench/results/$(date -u +%Y%m%dT%H%M%SZ).json" "$@"
