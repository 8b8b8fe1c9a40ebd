#!/usr/bin/env bash
# Crash safety: `notebookd run` SIGKILLed at random moments, over
# and over, while it converges 2,000 manifests against an emulator that keeps its state
# across the restarts, drops 5% of the successful creates' answers (the instance exists,
# the client never learns it) and holds every request a little (--latency-ms before it is
# handled, --slow-ms after), so that kills land with creates on the wire, made but not
# answered, or not yet made. Then one `notebookd once` on the same state converges, and:
#   - the emulator never answered a create 6301 (a second create for a name that had an
#     instance: an unknown outcome resolved by creating again instead of listing first);
#   - every name has exactly one instance, made by exactly one create (a create whose
#     answer was lost, or that the kill interrupted, is adopted, not made again);
#   - the state database passes PRAGMA integrity_check;
#   - `status --json` has the 2,000 names, each with an instance id, and no open intent.
#
# The kill delays come from bash's RANDOM seeded with NB_CRASH_SEED (printed; set it to
# replay a failure's schedule; the emulator's fault draws use the same seed, the thread
# timing does not replay). Knobs: NB_CRASH_KILLS (50), NB_CRASH_N (2000).
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=CRASHTESTAK000000001
SK=crashTestSecretKey0123456789abcdefghijKL
TOKEN=crash-test-control-token
PROJECT=c0a5c0a5c0a5c0a5c0a5c0a5c0a5c0a5
N=${NB_CRASH_N:-2000}
KILLS=${NB_CRASH_KILLS:-50}
SEED=${NB_CRASH_SEED:-$(((RANDOM << 15 | RANDOM) % 1000000 + 1))}
RANDOM=$SEED
nb_step "seed $SEED (replay: NB_CRASH_SEED=$SEED), $N manifests, $KILLS kills"

nb_start_emulator --ak "$AK" --sk "$SK" --token "$TOKEN" --project-id "$PROJECT" --seed "$SEED" \
        --drop-after-create-rate 0.05 --latency-ms 25 --slow-ms 25 --create-delay-ms 100

M=$T/manifests
S=$T/state
mkdir -p "$M" "$S"
nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$M" "$S"

# One process writes them all (2,000 processes would take longer than the test).
awk -v n="$N" -v d="$M" 'BEGIN {
        for (i = 1; i <= n; i++) {
                f = sprintf("%s/crash-%04d.yaml", d, i)
                printf "name: crash-%04d\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n", i >f
                close(f)
        }
}'
nb_assert_eq "$N" "$(find "$M" -name '*.yaml' | wc -l)" "manifests written"

notebookd() { # ARGS...: credentials from $T/creds only
        env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
                -u HUAWEICLOUD_SDK_PROJECT_ID CREDENTIALS_DIRECTORY="$T/creds" \
                "$NOTEBOOKD" -c "$T/config.yaml" --log-target=console "$@"
}
stat_of() { nb_emulator_stats | jq -r "$1"; }
open_intents() { "$NOTEBOOKD" -c "$T/config.yaml" --json status | jq '.open_intents | length'; }

# ---- the kills ----
# Odd incarnations are killed 20-400 ms after their start (start-up, the scan, the
# listing, the resolution of the last one's intents and the writing of new ones are
# fair game too), even ones 0-150 ms after the first answer to one of their creates,
# so while creates are on the wire (the client keeps `concurrency` of them out): under
# ASan a start-up alone takes longer than 400 ms, and handing 2,000 creates to the
# client takes longer than 150 ms.
# "Mid-create": the emulator handled more of this incarnation's creates than the
# incarnation logged answers for, so at least one instance was made (or one create
# handled) whose answer died with the process. Counted from the emulator's stats read
# right after the kill, so creates still held by --latency-ms are not counted: a floor.
kills=0 after_create=0 mid_create=0 sent_total=0
: >"$T/daemons.log"
for ((i = 1; i <= KILLS; i++)); do
        if [ $((i % 2)) = 1 ]; then
                from=spawn delay=$((20 + RANDOM % 381))
        else
                from=first-answer delay=$((RANDOM % 151))
        fi
        creates0=$(stat_of .by_route.create)
        nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
                -u HUAWEICLOUD_SDK_PROJECT_ID CREDENTIALS_DIRECTORY="$T/creds" \
                "$NOTEBOOKD" -c "$T/config.yaml" --log-target=console run
        pid=$NB_PID
        if [ "$from" = first-answer ]; then
                nb_wait_for_line "$T/daemon.log" 'Created notebook|Create of notebook' "$NB_TIMEOUT" 1 "$pid" >/dev/null
                after_create=$((after_create + 1))
        fi
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))" # the random moment: the point of the test
        kill -KILL "$pid" 2>/dev/null || true
        # Reaped here rather than by nb_stop: SIGKILL needs no safety net, and nb_stop's
        # killer helper, signalled at once when the process is already gone, can sit out
        # its whole grace.
        st=0
        wait "$pid" 2>/dev/null || st=$?
        nb__untrack "$pid"
        { echo "---- incarnation $i (pid $pid, killed ${delay} ms after $from) ----"; cat "$T/daemon.log"; } >>"$T/daemons.log"
        # `run` never exits by itself: anything but death by SIGKILL is a failure.
        nb_assert_eq 137 "$st" "incarnation $i: exit status (137: killed by the SIGKILL sent, seed $SEED)"
        kills=$((kills + 1))
        handled=$(($(stat_of .by_route.create) - creates0))
        handed=$(grep -c 'Creating notebook' "$T/daemon.log" || true)
        answered=$(grep -cE 'Created notebook|Create of notebook' "$T/daemon.log" || true)
        sent_total=$((sent_total + handled))
        [ "$handled" -gt "$answered" ] && mid_create=$((mid_create + 1))
        printf 'kill %2d: %3d ms after %-12s  creates handed to the client %4d, handled by the emulator %3d, answered %3d;  open intents %4d, live %4d\n' \
                "$i" "$delay" "$from" "$handed" "$handled" "$answered" "$(open_intents)" "$(stat_of .instances.live)" >&2
done
nb_assert_file_no_match "$T/daemons.log" 'Sanitizer|runtime error' "the killed daemons' output (sanitizers)"
nb_emulator_stats >"$T/stats-killed.json"
nb_step "$kills SIGKILLs, each of a running daemon ($after_create timed from the first answer to a create);" \
        "$mid_create landed mid-create (creates handled whose answers died with the process);" \
        "after them: $(jq .instances.live "$T/stats-killed.json") of $N instances live," \
        "$(jq .creates.requests "$T/stats-killed.json") create requests," \
        "$(jq .faults.dropped_after_create "$T/stats-killed.json") answers dropped after create"
[ "$kills" -ge 50 ] || [ -n "${NB_CRASH_KILLS:-}" ] || nb_fail "only $kills kills"
# Else the kills proved nothing.
[ "$mid_create" -gt 0 ] || nb_fail "no kill landed mid-create (seed $SEED)"

# ---- converge ----
nb_step "once converges on the same state"
rc=0
notebookd --timeout 120 once >"$T/once.stdout.log" 2>"$T/once.stderr.log" || rc=$?
nb_assert_eq 0 "$rc" "once after the kills: exit status"
nb_assert_file_no_match "$T/once.stderr.log" 'Sanitizer|runtime error' "once output (sanitizers)"

nb_emulator_stats >"$T/stats.json"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats.json")" \
        "creates answered 6301 (a second create for a name with an instance; seed $SEED)"
bad=$(jq -r '.creates.by_name | to_entries[] | select(.value.created != 1 or .value.duplicates != 0) | "\(.key) \(.value)"' "$T/stats.json")
[ -z "$bad" ] || nb_fail "names not created exactly once (seed $SEED): $(head -n 20 <<<"$bad")"
nb_assert_eq "$N" "$(jq '.creates.by_name | length' "$T/stats.json")" "names the emulator saw creates for"
nb_assert_eq "$N" "$(jq '.creates.created' "$T/stats.json")" "instances made"
nb_assert_eq "$N" "$(jq '.instances.live' "$T/stats.json")" "live instances"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats.json")" \
        "protocol violations ($(jq -c '.recent_violations' "$T/stats.json"))"

nb_assert_eq ok "$(sqlite3 "$S/notebookd.db" 'PRAGMA integrity_check')" "integrity_check of the state database (seed $SEED)"

"$NOTEBOOKD" -c "$T/config.yaml" --json status >"$T/status.json"
nb_assert_eq "$N" "$(jq '[.instances[] | select(.name | startswith("crash-"))] | length' "$T/status.json")" "records"
nb_assert_eq "$N" "$(jq '[.instances[] | .name] | unique | length' "$T/status.json")" "distinct names recorded"
nb_assert_eq "$N" "$(jq '[.instances[] | select((.instance_id // "") != "")] | length' "$T/status.json")" \
        "records with an instance id"
nb_assert_eq 0 "$(jq '.open_intents | length' "$T/status.json")" \
        "open create intents after once converged (seed $SEED: $(jq -c .open_intents "$T/status.json"))"
# each record names the instance the emulator has under that name (listed with the
# control token, faults and delays off: the test's own call)
nb_emulator_config 'drop_after_create_rate=0&latency_ms=0&slow_ms=0'
curl -fsS -H "X-Auth-Token: $TOKEN" -H "X-Project-Id: $PROJECT" \
        "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances?de_type=Notebook" |
        jq -r '.instances[] | "\(.name) \(.id)"' | sort >"$T/remote"
jq -r '.instances[] | "\(.name) \(.instance_id)"' "$T/status.json" | sort >"$T/recorded"
diff -u "$T/remote" "$T/recorded" >"$T/records.diff" ||
        nb_fail "records differ from the emulator's instances: $(head -n 20 "$T/records.diff")"
nb_step "final: $(jq .creates.requests "$T/stats.json") create requests for $N names," \
        "$(jq .creates.created "$T/stats.json") made, $(jq .creates.duplicates "$T/stats.json") duplicates," \
        "$(jq .faults.dropped_after_create "$T/stats.json") answers dropped after create," \
        "$(jq '[.instances[] | select(.result == "adopted")] | length' "$T/status.json") adopted, integrity ok"
nb_step "ok"
