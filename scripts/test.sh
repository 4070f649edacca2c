#!/usr/bin/env bash
# What `npm test` runs: installs the real peers the tests drive, builds, typechecks, then runs every test file.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

# `npm install && npm test` and a plain `npm test` on a fresh checkout both work.
# npm records what it installed in node_modules/.package-lock.json; touching it afterwards keeps an install that
# changed nothing from being repeated on every run.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  npm install --no-audit --no-fund
  touch "$stamp"
fi

npx tsc -p tsconfig.json
npx tsc -p test/tsconfig.json --noEmit

# Node 20's --test does not expand globs itself.
mapfile -t files < <(find test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found under test/" >&2
  exit 1
fi

# The spec reporter prints each test and closes with the runner's summary (tests, pass, fail, ...).
exec node --import tsx --test --test-reporter=spec --test-concurrency=2 --test-timeout=120000 "${files[@]}"
