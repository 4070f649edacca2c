#!/usr/bin/env bash
# Shared by `npm test` and `npm run bench`: the Debian peers the tests and benchmarks drive, npm packages when the
# lock file changed (so `npm install && npm test` and a plain `npm test` on a fresh checkout both work), and a build.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

# npm records what it installed in node_modules/.package-lock.json; touching it afterwards keeps an install that
# changed nothing from being repeated on every run.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  npm install --no-audit --no-fund
  touch "$stamp"
fi

# Native addons skipped or built for another Node version are rebuilt here (see scripts/ensure-native.mjs).
node scripts/ensure-native.mjs

npx tsc -p tsconfig.json
