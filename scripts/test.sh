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

# Heavy engines are started once for the whole run and shared by every test file (each takes fresh databases and
# buckets of its own): one PostgreSQL server and one Ceph radosgw (S3), named to the tests by FTPSD_TEST_PG_URL_BASE
# and FTPSD_TEST_S3_*. A test file run alone starts its own (test/helpers/postgres.ts, test/helpers/s3.ts).
engines=$(mktemp -d /tmp/ftpsd-engines.XXXXXX)
chmod 0755 "$engines"
stop_engines() {
  bash scripts/start-ceph-rgw.sh stop "$engines/ceph" || true
  bash scripts/start-postgres.sh stop "$engines/pg" || true
  rm -rf "$engines"
}
trap stop_engines EXIT
# Ports outside the passive ranges the tests use (10000-19999) and the helpers' own (20000-37999).
base_port=$((38000 + RANDOM % 1500))
pg_vars=$(bash scripts/start-postgres.sh start "$engines/pg" "$base_port")
export "${pg_vars?}"
if [ "$(id -u)" -eq 0 ]; then
  ceph_vars=$(bash scripts/start-ceph-rgw.sh start "$engines/ceph" $((base_port + 1)) $((base_port + 2)))
  while IFS= read -r assignment; do export "${assignment?}"; done <<<"$ceph_vars"
else
  echo "test: not root, so no shared Ceph (its daemons need root): the S3 tests will try to start their own" >&2
fi

# The spec reporter prints each test and closes with the runner's summary (tests, pass, fail, ...). Not exec'd: the
# trap above stops the engines when the tests are done.
node --import tsx --test --test-reporter=spec --test-concurrency=2 --test-timeout=300000 "${files[@]}"
