#!/bin/sh
# Golden diagnostics (OpenBSD regress style): a manifest in, the exact stderr out.
#
#   sh tests/golden/run.sh [NAME...]     from the repository root; BUILD=build by default
#
# For every case under tests/golden/cases/:
#   NAME.yaml      a file case: `notebookd check NAME.yaml`, run inside cases/
#   NAME.d/        a directory case: copied to a temporary directory, NAME.d/setup.sh (if
#                  any) run inside the copy (symlinks, fifos, .git/, thousands of files:
#                  what git cannot hold) and removed, then `notebookd check NAME.d` there
#   NAME.stderr    the exact expected stderr (compared with diff -u)
#   NAME.exit      the expected exit code (absent: 1)
#   NAME.json      optional: `check --json` is run too; its stdout must be exactly this
#                  (one line), its stderr empty, its exit code the same
#   NAME.conf      optional: a config file, passed as `-c NAME.conf` (the host config's
#                  profiles:/flavors:/tenants: as CI enforces them)
# Paths in the expected output are therefore relative: "NAME.yaml:3:7: error: ...".
# An expectation without its case (no NAME.yaml, no NAME.d/), or any other file in
# cases/, is a failure: a lost case must never be skipped in silence.
#
# check runs with an empty environment (PATH, LC_ALL=C and the sanitizer options only)
# and without -c (unless NAME.conf): given a path, check reads no config file, so the
# host's /etc/notebookd cannot change the outcome, and that is tested here on every case.
#
# Last, "examples": the shipped manifests/ must check clean (exit 0, no diagnostic).
#
# GOLDEN_UPDATE=1 writes what check printed as the expected output instead of comparing
# (for a new case; create an empty NAME.json first to capture --json too; review the
# result before committing it).
set -u

BUILD=${BUILD:-build}
top=$(pwd)
case $BUILD in
/*) bin=$BUILD/notebookd ;;
*) bin=$top/$BUILD/notebookd ;;
esac
cases=$top/tests/golden/cases

if [ ! -x "$bin" ]; then
        echo "golden: $bin not built (run make first)" >&2
        exit 1
fi
if [ ! -d "$cases" ]; then
        echo "golden: no $cases directory (run from the repository root)" >&2
        exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/golden.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

passed=0
failed=0

# run_check DIR ARG...: notebookd ARG... from DIR, clean environment; sets code.
run_check() {
        (
                cd "$1" || exit 125
                shift
                exec env -i PATH=/usr/local/bin:/usr/bin:/bin LC_ALL=C \
                        ${ASAN_OPTIONS+"ASAN_OPTIONS=$ASAN_OPTIONS"} \
                        ${UBSAN_OPTIONS+"UBSAN_OPTIONS=$UBSAN_OPTIONS"} \
                        ${LSAN_OPTIONS+"LSAN_OPTIONS=$LSAN_OPTIONS"} \
                        "$bin" "$@"
        ) >"$tmp/stdout" 2>"$tmp/stderr"
        code=$?
}

# run_case NAME DIR ARG: check ARG from DIR, compare with NAME.stderr and NAME.exit.
run_case() {
        name=$1 dir=$2 arg=$3
        expected_exit=1
        if [ -f "$cases/$name.exit" ]; then
                read -r expected_exit <"$cases/$name.exit"
        fi
        set --
        if [ -f "$dir/$name.conf" ]; then
                set -- -c "$name.conf"
        fi
        run_check "$dir" "$@" check "$arg"

        if [ "${GOLDEN_UPDATE:-0}" = 1 ]; then
                cp "$tmp/stderr" "$cases/$name.stderr"
                if [ "$code" -eq 1 ]; then
                        rm -f "$cases/$name.exit"
                else
                        echo "$code" >"$cases/$name.exit"
                fi
                if [ -f "$cases/$name.json" ]; then
                        run_check "$dir" "$@" --json check "$arg"
                        cp "$tmp/stdout" "$cases/$name.json"
                fi
                echo "UPDATED $name (exit $code)"
                passed=$((passed + 1))
                return
        fi

        ok=1
        if [ ! -f "$cases/$name.stderr" ]; then
                echo "FAIL $name: no $name.stderr"
                ok=0
        elif ! diff -u "$cases/$name.stderr" "$tmp/stderr" >"$tmp/diff"; then
                echo "FAIL $name: stderr differs"
                sed 's/^/    /' "$tmp/diff"
                ok=0
        fi
        if [ "$code" != "$expected_exit" ]; then
                echo "FAIL $name: exit $code, expected $expected_exit"
                ok=0
        fi
        if [ -s "$tmp/stdout" ]; then
                echo "FAIL $name: unexpected output on stdout:"
                sed 's/^/    /' "$tmp/stdout"
                ok=0
        fi
        if [ -f "$cases/$name.json" ]; then
                run_check "$dir" "$@" --json check "$arg"
                if ! diff -u "$cases/$name.json" "$tmp/stdout" >"$tmp/diff"; then
                        echo "FAIL $name: --json output differs"
                        sed 's/^/    /' "$tmp/diff"
                        ok=0
                fi
                if [ -s "$tmp/stderr" ] || [ "$code" != "$expected_exit" ]; then
                        echo "FAIL $name: --json: exit $code (expected $expected_exit), stderr:"
                        sed 's/^/    /' "$tmp/stderr"
                        ok=0
                fi
        fi
        if [ $ok = 1 ]; then
                echo "PASS $name"
                passed=$((passed + 1))
        else
                failed=$((failed + 1))
        fi
}

# Names given on the command line select cases; none: all of them.
only=" $* "
selected() {
        [ "$only" = "  " ] && return 0
        case $only in
        *" $1 "*) return 0 ;;
        esac
        return 1
}

# Every expectation belongs to a case: one whose NAME.yaml or NAME.d/ is missing (a
# .gitignore rule once kept all the NAME.d/ out of git) would otherwise be skipped in
# silence. So is anything else in cases/ that is no part of a case (a NAME.yml, a typo).
# Checked whatever names were given.
for f in "$cases"/* "$cases"/.[!.]*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        file=${f##*/}
        name=${file%.*}
        case $file in
        *.yaml) [ -f "$f" ] && continue ;;
        *.d) [ -d "$f" ] && continue ;;
        *.stderr | *.exit | *.json)
                { [ -f "$cases/$name.yaml" ] || [ -d "$cases/$name.d" ]; } && continue ;;
        *.conf) { [ -f "$cases/$name.yaml" ] || [ -d "$cases/$name.d" ]; } && continue ;;
        esac
        case $file in
        *.stderr | *.exit | *.json | *.conf)
                echo "FAIL $name: $file has no case (no $name.yaml, no $name.d/)" ;;
        *) echo "FAIL $file: not a case nor an expectation (NAME.yaml, NAME.d/, NAME.stderr, NAME.exit, NAME.json, NAME.conf)" ;;
        esac
        failed=$((failed + 1))
done

for f in "$cases"/*.yaml; do
        [ -f "$f" ] || continue
        name=$(basename "$f" .yaml)
        selected "$name" || continue
        run_case "$name" "$cases" "$name.yaml"
done

for d in "$cases"/*.d; do
        [ -d "$d" ] || continue
        name=$(basename "$d" .d)
        selected "$name" || continue
        work=$tmp/case-$name
        mkdir "$work" && cp -R "$d" "$work/$name.d" || { echo "FAIL $name: cannot copy"; failed=$((failed + 1)); continue; }
        if [ -f "$cases/$name.conf" ] && ! cp "$cases/$name.conf" "$work/"; then
                echo "FAIL $name: cannot copy $name.conf"
                failed=$((failed + 1))
                continue
        fi
        if [ -f "$work/$name.d/setup.sh" ]; then
                if ! (cd "$work/$name.d" && sh ./setup.sh) >"$tmp/setup.log" 2>&1; then
                        echo "FAIL $name: setup.sh failed"
                        sed 's/^/    /' "$tmp/setup.log"
                        failed=$((failed + 1))
                        rm -rf "$work"
                        continue
                fi
                rm -f "$work/$name.d/setup.sh"
        fi
        run_case "$name" "$work" "$name.d"
        rm -rf "$work"
done

# The shipped examples (manifests/) must pass clean: no error, no warning.
if selected examples && [ "${GOLDEN_UPDATE:-0}" != 1 ]; then
        run_check "$top" check manifests/
        if [ "$code" = 0 ] && [ ! -s "$tmp/stdout" ] && [ "$(wc -l <"$tmp/stderr")" -eq 1 ] &&
                grep -Eq '^[1-9][0-9]* files?, [1-9][0-9]* instances?, 0 errors, 0 warnings$' "$tmp/stderr"; then
                echo "PASS examples"
                passed=$((passed + 1))
        else
                echo "FAIL examples: notebookd check manifests/ exit $code, expected 0 and no diagnostic"
                sed 's/^/    /' "$tmp/stderr" "$tmp/stdout"
                failed=$((failed + 1))
        fi
fi

echo "$passed passed, $failed failed"
if [ $((passed + failed)) -eq 0 ]; then
        echo "golden: no cases ran" >&2
        exit 1
fi
[ "$failed" -eq 0 ]
