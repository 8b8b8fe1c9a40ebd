# shellcheck shell=bash
# tests/bench/scale.sh: part e of `make bench` (sourced by run.sh, whose helpers it uses:
# measure, row, section, failed, emu_start, emu_stat, once_cmd, calc, ensure_tool).
#
#   e. scale: the table of issue 9 (part 6), against an emulator answering every call
#      20 ms late, concurrency 64, for N = 1,000 and 10,000 manifests (and 50,000 with
#      BENCH_LARGE=1):
#      - converge from empty (`once`, emulator reset and state removed before each run):
#        wall / floor, where floor = 20 ms x (1 + ceil(N / 64)) (one listing, then the
#        creates in waves of 64), CPU (user + sys) and peak RSS, from GNU time;
#      - the no-op `once` over the converged state (scan, list, plan, nothing sent);
#      - at N = 10,000, a daemon holding the fleet: a full pass with nothing to do
#        (SIGHUP: rescan, list every page, plan), one new manifest to its create on the
#        wire (the debounce is 200 ms), list calls that edit sent, and the wake-ups of
#        the idle daemon over 10 s (context switches, from /proc);
#      - `check` and `plan` of each tree (linear?);
#      - the series as a plot, $OUT/scaling.svg (gnuplot): converge wall time and the
#        floor, CPU per instance, peak RSS, against N.
#
# Every figure is the median of 3 runs (1 run at 50,000); the runs' min and max are in the
# table beside it.

SCALE_LAT_MS=20
SCALE_CONC=64

# time_run LOG CMD...: run CMD under GNU time; T_WALL T_CPU (s) T_RSS (KiB), or return 1.
time_run() {
        local log=$1
        shift
        command time -f 'TIME %e %U %S %M' -o "$log.time" "$@" >>"$log" 2>&1 || return 1
        read -r _ T_WALL u s T_RSS <"$log.time"
        T_CPU=$(calc '%.3f' "$u + $s")
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'; }

# The daemon's CPU time so far (utime + stime, seconds) and its context switches.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / hz }' "/proc/$1/stat"; }
proc_switches() { awk '/^(voluntary|nonvoluntary)_ctxt_switches/ { s += $2 } END { print s }' "/proc/$1/status"; }

# wait_log_count LOG ERE N: until LOG has N lines matching ERE (60 s at most).
wait_log_count() {
        local i
        for ((i = 0; i < 12000; i++)); do
                (($(grep -cE "$2" "$1" || true) >= $3)) && return 0
                sleep 0.005
        done
        return 1
}

declare -A SCALE_WALL SCALE_CPU SCALE_RSS

scale_converge() { # N RUNS URL CFG
        local n=$1 runs=$2 url=$3 cfg=$4 i
        local tree=$WORK/scale-$n state=$WORK/scale-$n.state
        local walls=() cpus=() rsss=() log=$LOGS/scale-converge-$n.log floor
        : >"$log"
        for ((i = 0; i < runs; i++)); do
                curl -sf -X POST -o /dev/null "$url/_emulator/reset"
                rm -rf "$state" && mkdir -p "$state"
                once_cmd "$url" "$state" "$tree" "$cfg" 900
                if ! time_run "$log" "${ONCE[@]}"; then
                        failed "converge $n" "scale-converge-$n"
                        return 1
                fi
                walls+=("$T_WALL") cpus+=("$T_CPU") rsss+=("$T_RSS")
        done
        local created dups
        created=$(emu_stat "$url" .creates.created) dups=$(emu_stat "$url" .creates.duplicates)
        floor=$(calc '%.3f' "$SCALE_LAT_MS * (1 + int(($n + $SCALE_CONC - 1) / $SCALE_CONC)) / 1000")
        read -r "SCALE_WALL[$n]" wmin wmax < <(median "${walls[@]}")
        read -r "SCALE_CPU[$n]" _ _ < <(median "${cpus[@]}")
        read -r "SCALE_RSS[$n]" _ _ < <(median "${rsss[@]}")
        local note
        note="CPU $(calc '%.2f s' "${SCALE_CPU[$n]}") ($(calc '%.0f us' "${SCALE_CPU[$n]} * 1e6 / $n")/inst), RSS $(calc '%.1f MiB' "${SCALE_RSS[$n]} / 1024")"
        [ "$created" = "$n" ] && [ "$dups" = 0 ] || note="$note; WRONG: created $created, duplicates $dups"
        row "converge $n (floor $(fmt_time "$floor"))" "${SCALE_WALL[$n]}" "$wmin" "$wmax" "$note" \
                "$(calc '%.2fx floor' "${SCALE_WALL[$n]} / $floor")"
        printf '%s %s %s %s %s\n' "$n" "${SCALE_WALL[$n]}" "$floor" \
                "$(calc '%.1f' "${SCALE_CPU[$n]} * 1e6 / $n")" "$(calc '%.1f' "${SCALE_RSS[$n]} / 1024")" >>"$OUT/scaling.dat"

        # The same state and emulator again: nothing to do.
        walls=() cpus=()
        log=$LOGS/scale-noop-$n.log
        : >"$log"
        local lists0
        lists0=$(emu_stat "$url" '.by_route.list // 0')
        for ((i = 0; i < runs; i++)); do
                time_run "$log" "${ONCE[@]}" || { failed "once no-op $n" "scale-noop-$n"; return 1; }
                walls+=("$T_WALL") cpus+=("$T_CPU")
        done
        read -r med wmin wmax < <(median "${walls[@]}")
        read -r cmed _ _ < <(median "${cpus[@]}")
        note="CPU $(calc '%.2f s' "$cmed"), $(calc '%.0f list calls/run' "($(emu_stat "$url" '.by_route.list // 0') - $lists0) / $runs")"
        [ "$(emu_stat "$url" .creates.requests)" = "$n" ] || note="$note; WRONG: creates sent"
        row "once no-op $n (scan + list + plan)" "$med" "$wmin" "$wmax" "$note" -
}

# A daemon holding the converged fleet of N: a full pass, an edit, idleness.
scale_daemon() { # N URL CFG
        local n=$1 url=$2 cfg=$3
        local tree=$WORK/scale-$n state=$WORK/scale-$n.state log=$LOGS/scale-daemon-$n.log
        local dcfg=$WORK/scale-daemon.yaml pid i walls=() cpus=() lats=() t0 t1 c0 c1 lists0 sw0 sw1
        { cat "$cfg"; printf 'resync_interval: 1h\n'; } >"$dcfg"
        (trap - EXIT INT TERM; exec "$NB" -c "$dcfg" -e "$url" -p "$PROJECT" -s "$state" -m "$tree" \
                --log-target=console run) >"$log" 2>&1 &
        pid=$!
        EMU_PIDS+=("$pid")
        if ! wait_log_count "$log" 'Pass \(full\) finished' 1; then
                failed "daemon holding $n" "scale-daemon-$n"
                return 1
        fi
        for ((i = 1; i <= 3; i++)); do
                c0=$(proc_cpu "$pid") t0=$(date +%s%N)
                kill -HUP "$pid"
                wait_log_count "$log" 'Pass \(full\) finished' $((i + 1)) || { failed "daemon full pass" "scale-daemon-$n"; return 1; }
                t1=$(date +%s%N) c1=$(proc_cpu "$pid")
                walls+=("$(calc '%.3f' "($t1 - $t0) / 1e9")") cpus+=("$(calc '%.3f' "$c1 - $c0")")
        done
        read -r med wmin wmax < <(median "${walls[@]}")
        read -r cmed _ _ < <(median "${cpus[@]}")
        row "daemon: full pass, nothing to do ($n)" "$med" "$wmin" "$wmax" "CPU $(calc '%.3f s' "$cmed") (SIGHUP: rescan, list, plan)" -

        lists0=$(emu_stat "$url" '.by_route.list // 0')
        # Each new manifest is a document appended to a file of the tree: a new file would
        # take the tree past MANIFEST_MAX_FILES at 10,000, and one manifest would drop out.
        local host
        host=$(find "$tree" -name '*.yaml' -type f | sort | sed -n 1p)   # sed reads it all: no SIGPIPE under pipefail
        cp "$host" "$WORK/scale-host.yaml"
        for ((i = 1; i <= 3; i++)); do
                local name
                name=$(printf 'scale-edit-%d' "$i")
                t0=$(date +%s%N)
                printf -- '---\nname: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' \
                        "$name" >>"$host"
                wait_log_count "$log" "Creating notebook $name " 1 || { failed "daemon edit" "scale-daemon-$n"; return 1; }
                t1=$(date +%s%N)
                lats+=("$(calc '%.3f' "($t1 - $t0) / 1e9")")
        done
        read -r med wmin wmax < <(median "${lats[@]}")
        row "daemon: new manifest -> create sent ($n)" "$med" "$wmin" "$wmax" \
                "$(($(emu_stat "$url" '.by_route.list // 0') - lists0)) list calls for 3 edits" \
                "$(calc 'goal %.2f s' "0.2 + 2 * $SCALE_LAT_MS / 1000")"
        # Let the edits' creates and polls finish (a benchmark's pause, not a test's
        # synchronisation), then count the idle daemon's wake-ups.
        sleep 3
        sw0=$(proc_switches "$pid")
        sleep 10
        sw1=$(proc_switches "$pid")
        row "daemon: idle 10 s ($n)" - - - "$((sw1 - sw0)) wake-ups (context switches)" -
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        cp "$WORK/scale-host.yaml" "$host"   # the tree is N manifests again
}

bench_scale() {
        ensure_tool time time || { ROWS+=("scale|skipped|-|-|no GNU time|-"); return 0; }
        section "e. scale: N manifests, emulator answering ${SCALE_LAT_MS} ms late, concurrency $SCALE_CONC"
        local sizes=(1000 10000) held=10000 runs=3 n url cfg=$WORK/scale.yaml
        [ "${BENCH_LARGE:-0}" != 1 ] || sizes+=(50000)
        if [ "$QUICK" = 1 ]; then sizes=(100 300) held=300; fi
        emus_up
        emu_start URL_SCALE --latency-ms "$SCALE_LAT_MS"
        url=$URL_SCALE
        printf 'concurrency: %s\ntoken_file: %s\n' "$SCALE_CONC" "$WORK/token" >"$cfg"
        : >"$OUT/scaling.dat"
        for n in "${sizes[@]}"; do
                # at most 10,000 files a tree (MANIFEST_MAX_FILES): 50,000 is 5 a file
                bash "$GEN" "$WORK/scale-$n" "$n" $(((n + 9999) / 10000))
                ((n < 50000)) || runs=1
                scale_converge "$n" "$runs" "$url" "$cfg" || continue
                [ "$n" != "$held" ] || scale_daemon "$n" "$url" "$cfg"
                for verb in check plan; do
                        if measure "scale-$verb-$n" 3 1 "" "$NB" -c "$cfg" -s "$WORK/scale-$n.state" -m "$WORK/scale-$n" "$verb"; then
                                row "$verb $n" "$M_MED" "$M_MIN" "$M_MAX" "$(calc '%.1f us/manifest' "$M_MED * 1e6 / $n")" -
                        else
                                failed "$verb $n" "scale-$verb-$n"
                        fi
                done
        done
        local big=${sizes[-1]} ref=${sizes[-2]}
        if [ -n "${SCALE_CPU[$big]:-}" ] && [ -n "${SCALE_CPU[$ref]:-}" ]; then
                row "CPU per instance, $big vs $ref" - - - "" \
                        "$(calc '%.2f (1.00 = linear)' "(${SCALE_CPU[$big]} / $big) / (${SCALE_CPU[$ref]} / $ref)")"
                row "RSS per instance above $ref, $big vs $ref" - - - \
                        "$(calc '%.0f bytes/instance' "(${SCALE_RSS[$big]} - ${SCALE_RSS[$ref]}) * 1024 / ($big - $ref)")" -
        fi
        scale_plot
}

scale_plot() {
        if ! ensure_tool gnuplot gnuplot-nox; then
                ROWS+=("plot|skipped|-|-|no gnuplot (gnuplot-nox)|-")
                return 0
        fi
        gnuplot >"$LOGS/gnuplot.log" 2>&1 <<EOF || ROWS+=("plot|FAILED|-|-|see ${LOGS#"$SRC"/}/gnuplot.log|-")
set terminal svg size 1200,400 dynamic font 'sans,11'
set output '$OUT/scaling.svg'
set multiplot layout 1,3 title 'notebookd: converge N manifests from empty (emulator ${SCALE_LAT_MS} ms per call, concurrency ${SCALE_CONC}; $(date -u +%Y-%m-%d))'
set logscale x
set xlabel 'manifests (N)'
set key top left
set grid
set title 'wall time'
set ylabel 'seconds'
plot '$OUT/scaling.dat' using 1:2 with linespoints title 'converge', '' using 1:3 with lines dashtype 2 title 'floor'
set title 'CPU per instance'
set ylabel 'microseconds'
plot '$OUT/scaling.dat' using 1:4 with linespoints title 'user + sys / N'
set title 'peak RSS'
set ylabel 'MiB'
plot '$OUT/scaling.dat' using 1:5 with linespoints title 'max RSS'
unset multiplot
EOF
        say "plot: $OUT/scaling.svg"
}
