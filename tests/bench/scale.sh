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

# converge_runs N RUNS URL CFG LOGNAME [EMULATOR_URL]: RUNS converges of the tree of N
# from empty through URL (the emulator, at EMULATOR_URL when URL is a proxy in front of
# it, is reset and the state removed before each); medians in C_WALL (C_WMIN, C_WMAX),
# C_CPU and C_RSS, and the run's wrong counts, if any, in C_WRONG. Returns 1 on failure.
converge_runs() {
        local n=$1 runs=$2 url=$3 cfg=$4 log=$LOGS/$5.log emu=${6:-$3} i created dups
        local tree=$WORK/scale-$n state=$WORK/scale-$n.state walls=() cpus=() rsss=()
        : >"$log"
        for ((i = 0; i < runs; i++)); do
                curl -sf -X POST -o /dev/null "$emu/_emulator/reset"
                rm -rf "$state" && mkdir -p "$state"
                once_cmd "$url" "$state" "$tree" "$cfg" 900
                time_run "$log" "${ONCE[@]}" || return 1
                walls+=("$T_WALL") cpus+=("$T_CPU") rsss+=("$T_RSS")
        done
        created=$(emu_stat "$emu" .creates.created) dups=$(emu_stat "$emu" .creates.duplicates)
        C_WRONG=""
        [ "$created" = "$n" ] && [ "$dups" = 0 ] || C_WRONG="; WRONG: created $created, duplicates $dups"
        read -r C_WALL C_WMIN C_WMAX < <(median "${walls[@]}")
        read -r C_CPU _ _ < <(median "${cpus[@]}")
        read -r C_RSS _ _ < <(median "${rsss[@]}")
}

scale_floor() { calc '%.3f' "$SCALE_LAT_MS * (1 + int(($1 + $SCALE_CONC - 1) / $SCALE_CONC)) / 1000"; } # N

scale_converge() { # N RUNS URL CFG
        local n=$1 runs=$2 url=$3 cfg=$4 i
        local walls=() cpus=() floor note log med wmin wmax cmed
        converge_runs "$n" "$runs" "$url" "$cfg" "scale-converge-$n" || { failed "converge $n" "scale-converge-$n"; return 1; }
        floor=$(scale_floor "$n")
        SCALE_WALL[$n]=$C_WALL SCALE_CPU[$n]=$C_CPU SCALE_RSS[$n]=$C_RSS
        note="CPU $(calc '%.2f s' "${SCALE_CPU[$n]}") ($(calc '%.0f us' "${SCALE_CPU[$n]} * 1e6 / $n")/inst), RSS $(calc '%.1f MiB' "${SCALE_RSS[$n]} / 1024")$C_WRONG"
        row "converge $n (floor $(fmt_time "$floor"))" "${SCALE_WALL[$n]}" "$C_WMIN" "$C_WMAX" "$note" \
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

# ---- over TLS: nginx in front of the emulator, HTTP/2 and HTTP/1.1 ----
# The real API is HTTPS. Over HTTP/1.1 each create has a connection of its own (a TCP and
# a TLS handshake); to an origin that answered over HTTP/2 the creates share one
# (lib/http.c). Both through the same nginx (one worker), with a self-signed certificate
# for 127.0.0.1 that ca_file trusts.
URL_TLS_H2='' URL_TLS_H1=''
scale_tls_front() { # EMULATOR_URL: sets URL_TLS_H2 and URL_TLS_H1, or returns 1
        ensure_tool nginx nginx && ensure_tool openssl openssl || return 1
        local d=$WORK/tls emu_port=${1##*:} h2 h1 attempt i user=""
        mkdir -p "$d/tmp"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
                -addext subjectAltName=IP:127.0.0.1 -keyout "$d/key.pem" -out "$d/cert.pem" \
                >"$LOGS/tls-openssl.log" 2>&1 || return 1
        [ "$(id -u)" = 0 ] && user="user root root;"
        for attempt in 1 2 3 4 5; do
                h2=$((20000 + SRANDOM % 10000)) h1=$((20000 + SRANDOM % 10000))
                [ "$h2" != "$h1" ] || continue
                cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes 1;
$user
pid $d/nginx.pid;
error_log $LOGS/tls-nginx-error.log notice;
events { worker_connections 4096; }
http {
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    log_format nb '\$server_port \$connection \$request_method';
    access_log $d/access.log nb;
    upstream emulator { server 127.0.0.1:$emu_port; keepalive 128; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;
    proxy_buffering off;
    server { listen 127.0.0.1:$h2 ssl http2; ssl_certificate $d/cert.pem; ssl_certificate_key $d/key.pem;
             location / { proxy_pass http://emulator; } }
    server { listen 127.0.0.1:$h1 ssl; ssl_certificate $d/cert.pem; ssl_certificate_key $d/key.pem;
             location / { proxy_pass http://emulator; } }
}
EOF
                : >"$LOGS/tls-nginx-error.log"
                (trap - EXIT INT TERM; exec nginx -p "$d" -e "$LOGS/tls-nginx-error.log" -c "$d/nginx.conf") \
                        >"$LOGS/tls-nginx.log" 2>&1 &
                EMU_PIDS+=($!)
                for ((i = 0; i < 200; i++)); do
                        if curl -sf -o /dev/null --cacert "$d/cert.pem" "https://127.0.0.1:$h2/_emulator/stats" &&
                                curl -sf -o /dev/null --cacert "$d/cert.pem" "https://127.0.0.1:$h1/_emulator/stats"; then
                                URL_TLS_H2=https://127.0.0.1:$h2 URL_TLS_H1=https://127.0.0.1:$h1
                                return 0
                        fi
                        kill -0 "${EMU_PIDS[-1]}" 2>/dev/null || break
                        sleep 0.05
                done
                kill "${EMU_PIDS[-1]}" 2>/dev/null || true
                grep -q 'Address already in use' "$LOGS/tls-nginx-error.log" || return 1
        done
        return 1
}

# The converge of N over TLS, HTTP/2 then HTTP/1.1: CPU side by side, and the connections
# each run opened (from nginx's log).
scale_tls() { # N RUNS EMULATOR_URL CFG
        local n=$1 runs=$2 emu=$3 cfg=$4 tcfg=$WORK/scale-tls.yaml proto url conns h2_cpu="" note ratio
        if [ -z "$URL_TLS_H2" ] && ! scale_tls_front "$emu"; then
                ROWS+=("converge $n over TLS|skipped|-|-|nginx did not start: see ${LOGS#"$SRC"/}/tls-nginx-error.log|-")
                return 0
        fi
        { cat "$cfg"; printf 'ca_file: %s\n' "$WORK/tls/cert.pem"; } >"$tcfg"
        for proto in h2 h1; do
                url=$URL_TLS_H2
                [ "$proto" = h2 ] || url=$URL_TLS_H1
                : >"$WORK/tls/access.log"
                if ! converge_runs "$n" "$runs" "$url" "$tcfg" "scale-tls-$proto-$n" "$emu"; then
                        failed "converge $n over TLS $proto" "scale-tls-$proto-$n"
                        continue
                fi
                conns=$(awk '{ print $2 }' "$WORK/tls/access.log" | sort -u | wc -l)
                ratio=-
                note="CPU $(calc '%.2f s' "$C_CPU") ($(calc '%.0f us' "$C_CPU * 1e6 / $n")/inst), $(calc '%.0f' "$conns / $runs") connections/run$C_WRONG"
                if [ "$proto" = h2 ]; then
                        h2_cpu=$C_CPU
                elif [ -n "$h2_cpu" ]; then
                        ratio=$(calc 'CPU h2/h1 %.2f' "$h2_cpu / $C_CPU")
                fi
                row "converge $n, TLS $([ "$proto" = h2 ] && echo 'HTTP/2' || echo 'HTTP/1.1') (nginx)" \
                        "$C_WALL" "$C_WMIN" "$C_WMAX" "$note" "$ratio"
        done
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
                [ "$n" != "$held" ] || scale_tls "$n" "$runs" "$url" "$cfg"
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
