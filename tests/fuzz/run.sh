#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [TARGET...]: `make fuzz` (FUZZ_SECONDS=N make fuzz).
#
# Builds the libFuzzer targets (tests/fuzz/fuzz-*.c, with the library recompiled by clang
# into build/fuzz: see fuzz.mk), replays the saved reproducers in tests/fuzz/crashes/,
# then runs each target for SECONDS (default 60) and prints execs, execs/s, coverage and
# any crash. Targets: manifest config api sign (default: all).
#
# The corpus of each target lives in build/fuzz/corpus/TARGET and grows across runs; it
# starts from tests/fuzz/seeds/TARGET plus, for the YAML targets, every *.yaml/*.yml under
# manifests/, tests/golden/ and units/. A crash's input is written to
# build/fuzz/artifacts/TARGET/; to keep one for its owner, copy it to
# tests/fuzz/crashes/TARGET/ (this script replays those on every run, so a fix shows).
#
# Environment: FUZZ_RUNS=N gives each target an exec budget instead of a time: it runs
# until N executions (libFuzzer -runs=N; SECONDS is then ignored), so two runs are
# compared by the same amount of work, not by how busy the machine was.
# FUZZ_KEEP_GOING=1 keeps fuzzing past a crash (libFuzzer -fork=1
# -ignore_crashes=1: every crashing input gets an artifact; its "cov" counts are not
# comparable with the default mode's); FUZZ_JOBS for make (-j2).
# Exit status: 0 when no target crashed in this run, 1 otherwise, 2 when it cannot build.
# Not part of `make test`: fuzzing takes minutes by design.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC"
DUR=${1:-60}
[ $# -gt 0 ] && shift
[[ $DUR =~ ^[0-9]+$ ]] || { echo "usage: tests/fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2; }
RUNS=${FUZZ_RUNS:-}
[[ -z $RUNS || $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "FUZZ_RUNS: a positive number of executions" >&2; exit 2; }
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(manifest config api sign)
FB=build/fuzz
FUZZ_CC=${FUZZ_CC:-clang}

say() { echo "fuzz: $*" >&2; }

# ---- clang with libFuzzer (installed here when missing and root: not a CI dependency) ----
have_libfuzzer() {
        local d
        d=$(mktemp -d)
        printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void) d; (void) n; return 0; }\n' >"$d/t.c"
        "$FUZZ_CC" -fsanitize=fuzzer,address,undefined -o "$d/t" "$d/t.c" >/dev/null 2>&1
        local r=$?
        rm -rf "$d"
        return $r
}
if ! have_libfuzzer; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                say "installing clang and libclang-rt-dev (apt-get)"
                export DEBIAN_FRONTEND=noninteractive
                apt-get install -y -qq clang libclang-rt-dev >/dev/null 2>&1 ||
                        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq clang libclang-rt-dev >/dev/null 2>&1; } || true
        fi
        have_libfuzzer || { say "$FUZZ_CC cannot build libFuzzer targets (apt-get install clang libclang-rt-dev)"; exit 2; }
fi

mkdir -p "$FB"
if ! make -s -f tests/fuzz/fuzz.mk -j"${FUZZ_JOBS:-2}" FUZZ_CC="$FUZZ_CC" FUZZ_BUILD="$FB" >"$FB/build.log" 2>&1; then
        cat "$FB/build.log" >&2
        say "build failed"
        exit 2
fi

# ---- per-target settings ----
max_len_of() { case $1 in manifest) echo 16384 ;; config) echo 4096 ;; api) echo 16384 ;; sign) echo 1024 ;; esac; }
dict_of() { case $1 in manifest | config) echo tests/fuzz/dict/yaml.dict ;; api) echo tests/fuzz/dict/json.dict ;; sign) echo tests/fuzz/dict/sign.dict ;; esac; }

# The YAML targets also start from every real manifest and golden case in the tree.
# Copied flat (name made from the path) so libFuzzer reads only YAML, not setup scripts.
extra_seeds() { # TARGET DIR
        rm -rf "$2"
        mkdir -p "$2"
        case $1 in manifest | config) ;; *) return 0 ;; esac
        local f
        while IFS= read -r -d '' f; do
                cp "$f" "$2/$(printf '%s' "$f" | tr '/' '_')" 2>/dev/null || true
        done < <(find manifests tests/golden units -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.yaml.example' \) -print0 2>/dev/null)
}

# ---- replay the kept reproducers ----
for t in "${TARGETS[@]}"; do
        bin=$FB/fuzz-$t
        [ -x "$bin" ] || { say "no target $t (targets: manifest config api sign)"; exit 2; }
        for f in tests/fuzz/crashes/"$t"/*; do
                [ -f "$f" ] || continue
                case $f in *.txt | *.md) continue ;; esac
                if "$bin" -runs=1 "$f" >"$FB/replay.log" 2>&1; then
                        say "kept reproducer $f: no longer fails (fixed? then move it into tests/fuzz/seeds/$t: tests/fuzz/crashes/README.md)"
                else
                        say "kept reproducer $f: STILL FAILS: $(grep -m1 -E 'ERROR:|runtime error|SUMMARY' "$FB/replay.log" || echo '?')"
                        [ "${FUZZ_KEEP_GOING:-0}" = 1 ] ||
                                say "  (fuzzing $t will likely stop at that bug again: FUZZ_KEEP_GOING=1 fuzzes past it)"
                fi
        done
done

# ---- fuzz ----
ROWS=()
CRASHED=0
for t in "${TARGETS[@]}"; do
        bin=$FB/fuzz-$t corpus=$FB/corpus/$t art=$FB/artifacts/$t/ log=$FB/$t.log
        mkdir -p "$corpus" "$art"
        extra_seeds "$t" "$FB/seeds-$t"
        if [ -n "$RUNS" ]; then
                budget=(-runs="$RUNS")
        else
                budget=(-max_total_time="$DUR")
        fi
        opts=("${budget[@]}" -print_final_stats=1 -artifact_prefix="$art" -dict="$(dict_of "$t")"
                -max_len="$(max_len_of "$t")" -timeout=10 -rss_limit_mb=2048)
        [ "${FUZZ_KEEP_GOING:-0}" = 1 ] && opts+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
        say "$t: $([ -n "$RUNS" ] && echo "$RUNS executions" || echo "${DUR}s") ($bin, log $log)"
        stamp=$FB/$t.stamp
        touch "$stamp"
        rc=0
        started=$SECONDS
        "$bin" "${opts[@]}" "$corpus" "tests/fuzz/seeds/$t" "$FB/seeds-$t" >"$log" 2>&1 || rc=$?
        took=$((SECONDS - started))
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
        eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
        # The last status line: "#N  DONE/pulse/NEW ... cov: C ft: F corp: K/..."
        cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n1 || true)
        # Fork mode prints no final stats: its last "#EXECS: cov: ..." line has the count.
        if [ -z "$execs" ]; then
                execs=$(sed -n 's/^#\([0-9]*\): cov: .*/\1/p' "$log" | tail -n1)
                [ -z "$execs" ] || eps=$((execs / (took > 0 ? took : 1)))
        fi
        # Every input kept this run (fork mode writes them from its children, whose output
        # the log does not carry): new files in the artifact directory.
        arts=$(find "$art" -type f -newer "$stamp" | sort || true)
        if [ "$rc" = 0 ] && [ -z "$arts" ]; then
                result=ok
        else
                CRASHED=1
                result="CRASH (exit $rc, $(printf '%s' "$arts" | grep -c . || true) inputs)"
                # One line per distinct place: replay each input, keep its top frame.
                for a in $arts; do
                        where=$("$bin" -runs=1 "$a" 2>&1 | grep -E '^ +#0 |runtime error|ERROR: libFuzzer' |
                                head -n1 | sed -E 's/^ +#0 0x[0-9a-f]+ in //; s/ \(.*BuildId.*//' || true)
                        echo "${where:-? (see $a)}"
                done | sort | uniq -c | while read -r count where; do
                        say "$t: $count input(s) fail at: $where"
                done
                say "$t: inputs in $art (replay one: $bin FILE)"
        fi
        ROWS+=("$(printf '%-9s %6ss %12s %9s  %-34s %s' "$t" "$took" "${execs:-?}" "${eps:-?}" "${cov:-?}" "$result")")
done

echo
printf '%-9s %7s %12s %9s  %-34s %s\n' target time execs execs/s "coverage (edges, features, corpus)" result
printf '%s\n' "${ROWS[@]}"
exit $CRASHED
