#!/usr/bin/env bash
# What `npm test` runs: installs the real peers the tests drive, builds, typechecks, then runs every test file.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/prepare-build.sh
npx tsc -p test/tsconfig.json --noEmit

# Node 20's --test does not expand globs itself.
mapfile -t files < <(find test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found under test/" >&2
  exit 1
fi

# The spec reporter prints each test and closes with the runner's summary (tests, pass, fail, ...).
exec node --import tsx --test --test-reporter=spec --test-concurrency=2 --test-timeout=120000 "${files[@]}"
