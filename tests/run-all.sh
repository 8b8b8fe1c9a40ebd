#!/usr/bin/env bash
# make test: every unit suite, the golden diagnostics, every integration test.
# Prints one line per suite and, last, "N passed, N failed" (the plain summary CI reads).
set -u
BUILD=${BUILD:-build}
passed=0 failed=0 failures=()
logdir=$BUILD/test-logs
mkdir -p "$logdir"

run_one() { # name, command...
        local name=$1; shift
        local log=$logdir/$(echo "$name" | tr '/ ' '__').log
        if "$@" >"$log" 2>&1; then
                passed=$((passed + 1)); echo "PASS $name"
        else
                failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name (log: $log)"
                tail -n 40 "$log" | sed 's/^/    /'
        fi
}

for bin in "$@"; do
        run_one "unit/$(basename "$bin")" "$bin"
done
# NB_ONLY=integration (make integration): the integration tests alone
[ "${NB_ONLY:-}" = integration ] || run_one "golden" sh tests/golden/run.sh
for t in tests/integration/t-*.sh; do
        [ -e "$t" ] || continue
        run_one "integration/$(basename "$t" .sh)" bash "$t"
done

[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
