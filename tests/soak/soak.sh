#!/usr/bin/env bash
# The soak, proving the state stays bounded: one `notebookd run` lives through
# NB_SOAK_CYCLES cycles (100 for `make soak`, 10 in the suite as t-soak) of
#   add NB_SOAK_N manifests (fresh names each cycle) -> all created and RUNNING,
#   remove them all -> the pass that no longer desires them,
#   delete their instances in the emulator (/_emulator/reset),
#   SIGHUP: a full pass, which lists and so prunes (the resync's job; the passes of the
#   edits are incremental and list nothing),
# with state_retention: 1s, so each cycle's records become prunable in the next one.
# Measured: the state database's size (notebookd.db, and its -wal) and the daemon's
# VmRSS, at start, after cycle NB_SOAK_BASE (10; 3 for short runs) and at the end.
# Asserted: both flat, end <= 1.2 x base + a small constant; and the prune really ran
# (the "Pruned the state database" lines add up to the records of every cycle but the
# last two, which may still be inside the retention). A store that keeps every record
# grows by about NB_SOAK_N rows (plus as many intents) a cycle; a per-name leak in the
# daemon grows its RSS by the same factor. Synchronisation is on sd_notify STATUS=
# lines and the daemon's log, never on sleeps.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
nb_setup "$@"

CYCLES=${NB_SOAK_CYCLES:-100}
N=${NB_SOAK_N:-1000}
BASE=${NB_SOAK_BASE:-$((CYCLES >= 20 ? 10 : 3))}
[ "$CYCLES" -gt "$BASE" ] || nb_fail "NB_SOAK_CYCLES ($CYCLES) must exceed the base cycle ($BASE)"
# The constants: a few pages of SQLite slack, and malloc arenas settling.
DB_SLACK=${NB_SOAK_DB_SLACK:-65536}
RSS_SLACK_KB=${NB_SOAK_RSS_SLACK_KB:-2048}

AK=SOAKTESTAK0000000001
SK=soakTestSecretKey0123456789abcdefghIJ
PROJECT=5a5b5c5d5e5f60616263646566676869

nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0
nb_start_notify

M=$T/manifests
S=$T/state
mkdir -p "$M" "$T/stage" "$T/creds"
chmod 0700 "$T/creds"
printf '%s' "$AK" >"$T/creds/ak"
printf '%s' "$SK" >"$T/creds/sk"
chmod 0600 "$T/creds/ak" "$T/creds/sk"
cat >"$T/config.yaml" <<CONF
endpoint: $NB_EMULATOR_URL
project_id: $PROJECT
manifests: $M
state_dir: $S
resync_interval: 7d
state_retention: ${NB_SOAK_RETENTION:-1s}
CONF

nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
        -u HUAWEICLOUD_SDK_PROJECT_ID CREDENTIALS_DIRECTORY="$T/creds" \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=console run
DAEMON_PID=$NB_PID
LOG=$T/daemon.log
nb_wait_for_line "$NB_NOTIFY_LOG" '(^| |\\n)READY=1' "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=0 desired, 0 running, 0 creating' "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null

lines() { wc -l <"$1"; }
# Wait for a line matching ERE in FILE after its first SKIP lines (a mark taken before
# the change that causes it), or the daemon's exit.
wait_after() { # FILE SKIP ERE
        nb__wait_stream "$NB_TIMEOUT" "$3" 1 tail -n +"$(($2 + 1))" -F --pid="$DAEMON_PID" -- "$1" >/dev/null ||
                nb_fail "no line matching /$3/ in $1 (after line $2) within ${NB_TIMEOUT}s, or the daemon exited"
}
db_size() { stat -c %s "$S/notebookd.db"; }
wal_size() { stat -c %s "$S/notebookd.db-wal" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
measure() { # LABEL
        local d w r
        d=$(db_size) w=$(wal_size) r=$(rss_kb)
        printf '%s db=%s wal=%s rss_kb=%s\n' "$1" "$d" "$w" "$r" >>"$T/figures"
        nb_step "$1: notebookd.db $d bytes, -wal $w bytes, VmRSS $r kB"
        M_DB=$d M_RSS=$r
}

# Write the cycle's manifests outside the tree, then move them in at once.
stage() { # CYCLE
        local d=$T/stage/c$1 i
        mkdir "$d"
        for ((i = 0; i < N; i++)); do
                printf 'name: s%d-%d\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' \
                        "$1" "$i" >"$d/s$i.yaml"
        done
}

measure "start"
start_s=$(date +%s)
stage 1
for ((c = 1; c <= CYCLES; c++)); do
        mark=$(lines "$NB_NOTIFY_LOG")
        mv "$T/stage/c$c" "$M/c$c"
        wait_after "$NB_NOTIFY_LOG" "$mark" "STATUS=$N desired, $N running, 0 creating, 0 waiting, 0 failed, 0 rejected, 0 retrying, 0 invalid"
        if [ "$c" -lt "$CYCLES" ]; then
                stage $((c + 1)) # while nothing else happens
        fi
        mark=$(lines "$NB_NOTIFY_LOG")
        mv "$M/c$c" "$T/gone-c$c"
        wait_after "$NB_NOTIFY_LOG" "$mark" "STATUS=0 desired, 0 running, 0 creating"
        rm -rf "$T/gone-c$c"
        # Their instances go: the records of this cycle become prunable.
        curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/reset" >/dev/null
        mark=$(lines "$LOG")
        kill -HUP "$DAEMON_PID"
        wait_after "$LOG" "$mark" 'Pass \(full\) finished'
        if [ "$c" -eq "$BASE" ]; then
                measure "after cycle $c"
        fi
        if [ $((c % 10)) -eq 0 ]; then
                nb_step "cycle $c of $CYCLES done ($(($(date +%s) - start_s)) s)"
        fi
done
measure "after cycle $CYCLES (end)"
END_DB=$M_DB END_RSS=$M_RSS
read -r BASE_DB BASE_RSS < <(awk -v l="after cycle $BASE " 'index($0, l) == 1 {
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } print v["db"], v["rss_kb"] }' "$T/figures")

cat "$T/figures"
failures=()
db_max=$((BASE_DB * 12 / 10 + DB_SLACK))
rss_max=$((BASE_RSS * 12 / 10 + RSS_SLACK_KB))
[ "$END_DB" -le "$db_max" ] ||
        failures+=("the state database grew: $END_DB bytes after cycle $CYCLES, $BASE_DB after cycle $BASE (bound $db_max)")
[ "$END_RSS" -le "$rss_max" ] ||
        failures+=("the daemon's RSS grew: $END_RSS kB after cycle $CYCLES, $BASE_RSS kB after cycle $BASE (bound $rss_max)")
pruned=$(sed -n 's/.*Pruned the state database: \([0-9]*\) record.*/\1/p' "$LOG" | awk '{ s += $1 } END { print s + 0 }')
nb_step "records pruned in all: $pruned (of $((CYCLES * N)) made)"
[ "$pruned" -ge $(((CYCLES - 2) * N)) ] ||
        failures+=("only $pruned records were pruned; at least $(((CYCLES - 2) * N)) were past the retention")
intents=$(sed -n 's/.*Pruned the state database: .*, \([0-9]*\) resolved create intent.*/\1/p' "$LOG" |
        awk '{ s += $1 } END { print s + 0 }')
nb_step "create intents pruned in all: $intents"
[ "$intents" -ge $(((CYCLES - 2) * N)) ] ||
        failures+=("only $intents resolved create intents were pruned; at least $(((CYCLES - 2) * N)) were past the retention")

[ ${#failures[@]} -eq 0 ] || nb_fail "$(printf '%s; ' "${failures[@]}")"
nb_step "flat: db $END_DB <= $db_max bytes, rss $END_RSS <= $rss_max kB"
nb_stop "$DAEMON_PID"
nb_assert_eq 0 "$NB_STATUS" "the daemon's exit status"
echo PASS
