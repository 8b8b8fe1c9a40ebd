#!/usr/bin/env bash
# tests/bench/run.sh: `make bench`. Performance is measured here, never asserted in a test:
# these machines are shared and noisy, so every figure is a median (with min and max) over
# several runs, next to a ratio against a baseline measured in the same run, on the same
# machine, minutes apart. Ratios survive noise that absolute times do not.
#
#   a. check:  `notebookd check` on trees of 10..5000 manifests; baseline: `find | cat` of
#              the same files (the cost of just reading them). Per-file time shows scaling.
#   b. once:   `notebookd once` creating 100 and 1000 instances on build/modelarts-emulator
#              (create delay 0), with a static token (no signing; the emulator checks
#              nothing) and with AK/SK (signed by the client, verified by the emulator), at
#              concurrency 1 and 16; then the second, no-op run. Ratio: c1 / c16.
#   c. plan:   `notebookd plan` (and `status`) over a state of 10k records seeded by a
#              `once` run (fewer if this machine is too slow for that to fit the budget);
#              baseline: `check` of the same tree.
#   d. emulator raw throughput with ab (apache2-utils), to show the emulator is not the
#              bottleneck of (b): ratio = emulator capacity / notebookd's best rate.
#   e. scale:  converge, no-op, full pass, edit latency, idle wake-ups, check and plan at
#              1k and 10k manifests (50k with BENCH_LARGE=1), and build/bench/scaling.svg:
#              see tests/bench/scale.sh.
#
# Builds nothing (make bench depends on `all`). Uses hyperfine when installed (installs it
# with apt-get when missing and root), else a loop of `date +%s%N` around each run.
# Results: a table on stdout and in $BUILD/bench/results.txt; raw logs in $BUILD/bench/logs.
#
# Environment: BUILD (default build), BENCH_QUICK=1 (tiny sizes: checks the script
# itself in a few seconds), BENCH_ONLY="a c" (some parts), BENCH_NO_HYPERFINE=1 (force the
# fallback loop),
# BENCH_LARGE=1 (part e also at 50,000 manifests: minutes), BENCH_KEEP=1 (keep the
# generated trees and state in $BUILD/bench/work).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
NB=$BUILD/notebookd
EMU=$BUILD/modelarts-emulator
OUT=$BUILD/bench
RESULTS=$OUT/results.txt
LOGS=$OUT/logs
GEN=$SRC/tests/bench/gen-manifests.sh
PROJECT=ed43aef64dff4e5c81cb84b71adcb3fd
AK=BENCHAKEXAMPLE000001
SK=benchSecretKeyExample0123456789abcdefghi
QUICK=${BENCH_QUICK:-0}

for f in "$NB" "$EMU"; do
        [ -x "$f" ] || { echo "bench: $f is missing: run 'make bench' (it builds first)" >&2; exit 2; }
done
for t in curl jq awk; do
        command -v "$t" >/dev/null || { echo "bench: $t is required" >&2; exit 2; }
done

rm -rf "$OUT/work" "$LOGS"
mkdir -p "$OUT" "$LOGS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/notebookd-bench.XXXXXX")
EMU_PIDS=()
cleanup() {
        local p
        # Only the script's own shell: an emulator job signalled before it reset the
        # traps (below) must not stop the others or remove $WORK.
        [ "$BASHPID" = "$$" ] || return 0
        for p in "${EMU_PIDS[@]}"; do
                kill "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
        done
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
                mv "$WORK" "$OUT/work" && echo "bench: kept $OUT/work" >&2
        else
                rm -rf "$WORK"
        fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "bench: $*" >&2; }

# ---- tools: installed here, not by mk/deps.sh, so benchmarks never burden CI ----

ensure_tool() { # COMMAND PACKAGE: 0 when COMMAND is (now) available
        command -v "$1" >/dev/null && return 0
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                say "installing $2 (apt-get)"
                export DEBIAN_FRONTEND=noninteractive
                apt-get install -y -qq "$2" >"$LOGS/apt-$2.log" 2>&1 ||
                        { apt-get update -qq >>"$LOGS/apt-$2.log" 2>&1 &&
                                apt-get install -y -qq "$2" >>"$LOGS/apt-$2.log" 2>&1; } || true
        fi
        command -v "$1" >/dev/null
}

HYPERFINE=0
if [ "${BENCH_NO_HYPERFINE:-0}" != 1 ] && ensure_tool hyperfine hyperfine; then
        HYPERFINE=1
fi
AB=0
ensure_tool ab apache2-utils && AB=1

# ---- timing ----

# measure NAME RUNS WARMUP PREPARE CMD...: time CMD (stdout and stderr discarded, kept in
# the log), PREPARE (a script file, or "") run before every run and untimed. Sets M_MED,
# M_MIN, M_MAX in seconds. Returns 1 (and leaves the log) when any run fails: a benchmark
# of a failing command measures nothing.
measure() {
        local name=$1 runs=$2 warmup=$3 prep=$4
        shift 4
        local log=$LOGS/$name.log json=$LOGS/$name.json
        M_MED='' M_MIN='' M_MAX=''
        if [ "$HYPERFINE" = 1 ]; then
                local args=(--shell=none --runs "$runs" --warmup "$warmup" --style basic
                        --export-json "$json" --command-name "$name")
                [ -z "$prep" ] || args+=(--prepare "bash $prep")
                # hyperfine discards the command's output; a failing run makes it fail.
                if ! hyperfine "${args[@]}" -- "$(printf '%q ' "$@")" >"$log" 2>&1; then
                        # Run it once more, visibly, so the log says why.
                        { [ -z "$prep" ] || bash "$prep"; "$@"; } >>"$log" 2>&1 || true
                        return 1
                fi
                read -r M_MED M_MIN M_MAX < <(jq -r '.results[0] | "\(.median) \(.min) \(.max)"' "$json")
        else
                local i t0 t1 times=()
                : >"$log"
                for ((i = 0; i < warmup + runs; i++)); do
                        [ -z "$prep" ] || bash "$prep" >>"$log" 2>&1
                        t0=$(date +%s%N)
                        "$@" >/dev/null 2>>"$log" || return 1
                        t1=$(date +%s%N)
                        ((i < warmup)) || times+=($((t1 - t0)))
                done
                read -r M_MED M_MIN M_MAX < <(printf '%s\n' "${times[@]}" | sort -n | awk '
                        { t[NR] = $1 / 1e9 }
                        END { m = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
                              print m, t[1], t[NR] }')
        fi
}

fmt_time() { # SECONDS -> "12.3 ms" / "1.23 s"
        awk -v s="$1" 'BEGIN { if (s < 1e-3) printf "%.0f us", s * 1e6
                               else if (s < 1) printf "%.1f ms", s * 1e3
                               else printf "%.2f s", s }'
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; } # calc FORMAT EXPRESSION

# ---- results table: one row per measurement ----

ROWS=()
row() { # BENCHMARK MEDIAN MIN MAX DERIVED RATIO (times in seconds, or "-")
        local med=$2 min=$3 max=$4
        [ "$med" = - ] || { med=$(fmt_time "$2"); min=$(fmt_time "$3"); max=$(fmt_time "$4"); }
        ROWS+=("$1|$med|$min|$max|$5|$6")
        say "$(printf '%-42s median %-10s %s  %s' "$1" "$med" "$5" "$6")"
}
section() { ROWS+=("## $1"); say "== $1"; }
failed() { # BENCHMARK LOGNAME
        ROWS+=("$1|FAILED|-|-|see ${LOGS#"$SRC"/}/$2.log|-")
        say "$1: FAILED, see ${LOGS#"$SRC"/}/$2.log:"
        tail -n 5 "$LOGS/$2.log" >&2 || true
}

# ---- emulator ----

# emu_start VAR ARGS...: start an emulator on a free loopback port, its base URL in VAR.
emu_start() {
        local var=$1 pf=$WORK/$1.port i
        shift
        rm -f "$pf"
        (trap - EXIT; exec "$EMU" --listen 127.0.0.1:0 --port-file "$pf" --create-delay-ms 0 "$@") \
                >"$LOGS/emulator-$var.log" 2>&1 &
        EMU_PIDS+=($!)
        # The emulator writes the port file atomically once it listens.
        for ((i = 0; i < 200; i++)); do
                [ -s "$pf" ] && break
                kill -0 "${EMU_PIDS[-1]}" 2>/dev/null || { say "emulator failed to start:"; cat "$LOGS/emulator-$var.log" >&2; exit 1; }
                sleep 0.05
        done
        [ -s "$pf" ] || { say "emulator did not start"; exit 1; }
        printf -v "$var" 'http://127.0.0.1:%s' "$(cat "$pf")"
}
emu_stat() { curl -sf "$1/_emulator/stats" | jq -r "$2"; } # URL JQ-FILTER
# API requests served (the control plane's own /_emulator calls are not counted).
API_REQS='.by_route | del(.emulator) | add'


# ---- sizes and run counts ----

if [ "$QUICK" = 1 ]; then
        CHECK_SIZES=(10 100)
        ONCE_SIZES=(20 50)
        PLAN_RECORDS=200
        AB_REQUESTS=2000
        runs_for() { echo 2; }
else
        CHECK_SIZES=(10 100 1000 5000)
        ONCE_SIZES=(100 1000)
        PLAN_RECORDS=10000
        AB_REQUESTS=50000
        # Fewer runs where one run is long: the budget is ~10 minutes on 2 cores.
        runs_for() { if (($1 >= 1000)); then echo 5; else echo 10; fi; }
fi

say "notebookd $("$NB" --version 2>/dev/null | head -n1), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
say "timing with $([ "$HYPERFINE" = 1 ] && hyperfine --version || echo 'a date +%s%N loop (no hyperfine)')"
case $BUILD in */san) say "WARNING: a sanitizer build: these numbers say nothing about the product" ;; esac
START=$(date +%s)

# ======== a. check ========
bench_check() {
        section "a. check: validate N manifests (baseline: find|cat of the same files)"
        for n in "${CHECK_SIZES[@]}"; do
                tree=$WORK/check-$n
                bash "$GEN" "$tree" "$n"
                # The tree must be valid: a benchmark of the error path would measure the wrong thing.
                if ! out=$("$NB" check "$tree" 2>&1) || [[ $out != *"$n instances, 0 errors"* ]]; then
                        printf '%s\n' "$out" >"$LOGS/check-$n.log"
                        failed "check $n manifests" "check-$n"
                        continue
                fi
                runs=$((n >= 5000 ? 10 : 20))
                [ "$QUICK" = 1 ] && runs=3
                measure "cat-$n" "$runs" 2 "" find "$tree" -name '*.yaml' -type f -exec cat '{}' +
                cat_med=$M_MED
                row "cat $n files (baseline)" "$M_MED" "$M_MIN" "$M_MAX" \
                        "$(calc '%.1f us/file' "$M_MED * 1e6 / $n")" "1.00"
                if measure "check-$n" "$runs" 2 "" "$NB" check "$tree"; then
                        row "check $n manifests" "$M_MED" "$M_MIN" "$M_MAX" \
                                "$(calc '%.1f us/file' "$M_MED * 1e6 / $n")" "$(calc '%.2fx cat' "$M_MED / $cat_med")"
                        CHECK_PER_FILE[n]=$(calc '%.9f' "$M_MED / $n")
                else
                        failed "check $n manifests" "check-$n"
                fi
        done
        # Linear scaling: per-file time at the largest size over that at 1000 (fixed start-up cost
        # dominates the small trees, so they are not the reference).
        if [ "$QUICK" != 1 ] && [ -n "${CHECK_PER_FILE[1000]:-}" ] && [ -n "${CHECK_PER_FILE[5000]:-}" ]; then
                row "check scaling: per-file 5000 vs 1000" - - - "" \
                        "$(calc '%.2f (1.00 = linear)' "${CHECK_PER_FILE[5000]} / ${CHECK_PER_FILE[1000]}")"
        fi
}

# ======== b. once ========
# Two emulators for the whole run: one that checks nothing (the client sends a static
# token: no signing on either side) and one that verifies AK/SK signatures.
URL_TOKEN='' URL_AKSK='' URL_LATENCY=''
emus_up() {
        [ -z "$URL_TOKEN" ] || return 0
        printf 'bench-token-not-a-secret\n' >"$WORK/token"
        chmod 600 "$WORK/token"
        emu_start URL_TOKEN
        emu_start URL_AKSK --ak "$AK" --sk "$SK"
        export HUAWEICLOUD_SDK_AK=$AK HUAWEICLOUD_SDK_SK=$SK
}
once_cmd() { # URL STATE TREE CONFIG [TIMEOUT]: the command line in ONCE
        # --timeout bounds a stalled run: it then exits 3 and the row says FAILED.
        ONCE=("$NB" -c "$4" -e "$1" -p "$PROJECT" -s "$2" -m "$3" --log-target=console --timeout "${5:-120}" once)
}
BEST_RPS=0
CHECK_PER_FILE=()
declare -A ONCE_MED

# once_case LABEL URL AUTH N CONC RUNS [NOOP]: time `once` creating N instances from
# nothing (emulator reset, state removed before each run) and, with NOOP, the second run
# over the same state. The row's ratio for c=16 is the speed-up over the c=1 row of LABEL.
once_case() {
        local label=$1 url=$2 auth=$3 n=$4 conc=$5 runs=$6 noop=${7:-}
        local tree=$WORK/once-$n id=once-$label-c$conc-$n
        local cfg=$WORK/$id.yaml state=$WORK/$id.state med reqs created dups rps ratio note after
        [ -d "$tree" ] || bash "$GEN" "$tree" "$n"
        printf 'concurrency: %s\n' "$conc" >"$cfg"
        [ "$auth" = aksk ] || printf 'token_file: %s\n' "$WORK/token" >>"$cfg"
        printf 'curl -sf -X POST -o /dev/null %s/_emulator/reset\nrm -rf %s && mkdir -p %s\n' \
                "$url" "$state" "$state" >"$WORK/$id.prep"
        once_cmd "$url" "$state" "$tree" "$cfg"
        if ! measure "$id" "$runs" 0 "$WORK/$id.prep" "${ONCE[@]}"; then
                failed "once create $n, $label, c=$conc" "$id"
                return 0
        fi
        med=$M_MED
        # The emulator was reset before the last run: its stats are that run's.
        reqs=$(emu_stat "$url" "$API_REQS")
        created=$(emu_stat "$url" .creates.created)
        dups=$(emu_stat "$url" .creates.duplicates)
        rps=$(calc '%.0f' "$reqs / $med")
        ((rps <= BEST_RPS)) || BEST_RPS=$rps
        ONCE_MED[$label-$conc-$n]=$med
        ratio=-
        [ "$conc" = 1 ] || [ -z "${ONCE_MED[$label-1-$n]:-}" ] ||
                ratio=$(calc 'speed-up %.2fx' "${ONCE_MED[$label-1-$n]} / $med")
        note="$rps req/s"
        [ "$created" = "$n" ] && [ "$dups" = 0 ] || note="$note; WRONG: created $created, duplicates $dups"
        row "once create $n, $label, c=$conc" "$M_MED" "$M_MIN" "$M_MAX" "$note" "$ratio"
        [ -n "$noop" ] || return 0

        # The second run over the same state and emulator: nothing to do.
        if measure "$id-noop" "$runs" 0 "" "${ONCE[@]}"; then
                after=$(emu_stat "$url" .creates.requests)
                note="$(calc '%.0f requests/run' "($(emu_stat "$url" "$API_REQS") - $reqs) / $runs")"
                [ "$after" = "$n" ] || note="WRONG: $((after - n)) creates sent"
                row "once no-op $n, $label, c=$conc" "$M_MED" "$M_MIN" "$M_MAX" "$note" \
                        "$(calc '%.3f of create' "$M_MED / $med")"
        else
                failed "once no-op $n, $label, c=$conc" "$id-noop"
        fi
}

bench_once() {
        section "b. once: create N instances on the emulator (create delay 0), then a no-op run"
        emus_up
        local n conc lat_n=200
        for n in "${ONCE_SIZES[@]}"; do
                for conc in 1 16; do
                        once_case token "$URL_TOKEN" token "$n" "$conc" "$(runs_for "$n")" noop
                done
                for conc in 1 16; do
                        once_case aksk "$URL_AKSK" aksk "$n" "$conc" "$(runs_for "$n")" noop
                done
        done
        # On loopback a create costs little more than its two fsyncs (intent, outcome), so
        # concurrency buys only what batching them does. The cloud answers in tens of ms:
        # with every answer 20 ms late (the emulator suspends, it does not block a worker)
        # concurrency is what decides.
        [ "$QUICK" != 1 ] || lat_n=20
        [ -n "$URL_LATENCY" ] || emu_start URL_LATENCY --latency-ms 20
        for conc in 1 16; do
                once_case "token+20ms" "$URL_LATENCY" token "$lat_n" "$conc" 3
        done
}

# ======== c. plan ========
bench_plan() {
        section "c. plan/status over a seeded state (baseline: check of the same tree)"
        emus_up
        records=$PLAN_RECORDS
        # Seed with one `once` run if the measured create rate says it fits in ~2 minutes.
        if [ "$BEST_RPS" -gt 0 ]; then
                fit=$((BEST_RPS * 120 / 1000 * 1000))
                if ((fit < records)); then
                        records=$((fit < 1000 ? 1000 : fit))
                        say "seeding $records records, not $PLAN_RECORDS: $BEST_RPS req/s would take too long"
                fi
        fi
        tree=$WORK/plan-$records state=$WORK/plan.state cfg=$WORK/plan.yaml
        bash "$GEN" "$tree" "$records" 100
        printf 'concurrency: 16\ntoken_file: %s\n' "$WORK/token" >"$cfg"
        curl -sf -X POST -o /dev/null "$URL_TOKEN/_emulator/reset"
        mkdir -p "$state"
        t0=$(date +%s%N)
        once_cmd "$URL_TOKEN" "$state" "$tree" "$cfg" 300
        if "${ONCE[@]}" >"$LOGS/plan-seed.log" 2>&1; then
                t1=$(date +%s%N)
                secs=$(calc '%.6f' "($t1 - $t0) / 1e9")
                row "once seed $records (c=16, one run)" "$secs" "$secs" "$secs" \
                        "$(calc '%.0f creates/s' "$records / $secs")" -
                check_med=''
                if measure "plan-check-$records" 5 1 "" "$NB" check "$tree"; then
                        check_med=$M_MED
                        row "check $records (baseline)" "$M_MED" "$M_MIN" "$M_MAX" "" "1.00"
                else
                        failed "check $records (baseline)" "plan-check-$records"
                fi
                for verb in plan status; do
                        if measure "$verb-$records" 5 1 "" "$NB" -c "$cfg" -s "$state" -m "$tree" "$verb"; then
                                row "$verb over $records records" "$M_MED" "$M_MIN" "$M_MAX" \
                                        "$(calc '%.1f us/record' "$M_MED * 1e6 / $records")" \
                                        "$([ -n "$check_med" ] && calc '%.2fx check' "$M_MED / $check_med" || echo -)"
                        else
                                failed "$verb over $records records" "$verb-$records"
                        fi
                done
        else
                failed "once seed $records" plan-seed
        fi
}

# ======== d. emulator ========
bench_emulator() {
        section "d. emulator raw throughput (ab, keep-alive, 16 connections)"
        emus_up
        if [ "$AB" = 1 ]; then
                # After (c) the token emulator holds the seeded instances; alone, create one to get.
                local base=$URL_TOKEN/v1/$PROJECT/demanager/instances hdr=(-H "X-Project-Id: $PROJECT" -H "X-Auth-Token: x")
                local held id t what url n log rps bad note ratio
                held=$(emu_stat "$URL_TOKEN" .instances.live)
                if [ "$held" = 0 ]; then
                        curl -sf -o /dev/null "${hdr[@]}" -H 'Content-Type: application/json' --data-binary \
                                '{"name":"ab-1","profile_id":"Python3","flavor":"modelarts.vm.cpu.2u","spec":{"storage":{"type":"evs"}}}' "$base" || true
                        held=$(emu_stat "$URL_TOKEN" .instances.live)
                fi
                id=$(curl -sf "${hdr[@]}" "$base?de_type=Notebook&limit=1" | jq -r '.instances[0].id // empty' || true)
                local targets=("list 100 of $held|$base?de_type=Notebook&limit=100")
                [ -z "$id" ] || targets=("get one|$base/$id" "${targets[@]}")
                for t in "${targets[@]}"; do
                        what=${t%%|*} url=${t#*|}
                        n=$AB_REQUESTS
                        [[ $what == list* ]] && n=$((n / 10))
                        log=$LOGS/ab-${what%% *}.log
                        if ab -q -k -c 16 -n "$n" "${hdr[@]}" "$url" >"$log" 2>&1; then
                                rps=$(awk '/^Requests per second/ { print $4 }' "$log")
                                bad=$(awk '/^(Failed requests|Non-2xx responses)/ { s += $NF } END { print s + 0 }' "$log")
                                note="$(calc '%.0f req/s' "$rps")"
                                [ "$bad" = 0 ] || note="$note; $bad failed or non-2xx"
                                ratio=-
                                # A list page is 100 instances: a rate of pages compares with nothing.
                                [[ $what == list* ]] && note="$note, $(calc '%.0f instances/s' "$rps * 100")"
                                [[ $what == list* ]] || [ "$BEST_RPS" = 0 ] ||
                                        ratio=$(calc '%.1fx notebookd best' "$rps / $BEST_RPS")
                                row "emulator: $what, $n req" - - - "$note" "$ratio"
                        else
                                ROWS+=("emulator: $what|FAILED|-|-|see ${log#"$SRC"/}|-")
                                say "ab failed: $(tail -n 3 "$log")"
                        fi
                done
        else
                ROWS+=("emulator throughput|skipped|-|-|no ab (apache2-utils) and not root to install it|-")
                say "skipped: no ab"
        fi
}

# shellcheck source=tests/bench/scale.sh
. "$SRC/tests/bench/scale.sh"

for part in ${BENCH_ONLY:-a b c d e}; do
        case $part in
        a) bench_check ;;
        b) bench_once ;;
        c) bench_plan ;;
        d) bench_emulator ;;
        e) bench_scale ;;
        *) say "BENCH_ONLY: unknown part $part (a b c d e)"; exit 2 ;;
        esac
done

# ======== the table ========
{
        echo "notebookd benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "timing: $([ "$HYPERFINE" = 1 ] && hyperfine --version || echo 'date +%s%N loop') (median, min, max of each run set); wall $(($(date +%s) - START)) s; build $BUILD"
        [ "$QUICK" != 1 ] || echo "BENCH_QUICK=1: tiny sizes, figures meaningless"
        echo
        fmt='  %-40s %10s %10s %10s  %-34s %s\n'
        # shellcheck disable=SC2059
        printf "$fmt" benchmark median min max "per unit / rate" ratio
        for r in "${ROWS[@]}"; do
                if [[ $r == "## "* ]]; then
                        printf '%s\n' "${r#\#\# }"
                else
                        IFS='|' read -r -a f <<<"$r"
                        # shellcheck disable=SC2059
                        printf "$fmt" "${f[@]}"
                fi
        done
} >"$RESULTS"
echo
cat "$RESULTS"
echo
echo "(written to ${RESULTS#"$SRC"/}; logs in ${LOGS#"$SRC"/})"
# A failed or wrong benchmark is an error of `make bench` (the table still shows the rest).
if printf '%s\n' "${ROWS[@]}" | grep -qE '\|FAILED\||WRONG'; then
        say "some benchmarks FAILED or were WRONG: see the table and ${LOGS#"$SRC"/}"
        exit 1
fi
