#!/usr/bin/env bash
# `notebookd run` against the emulator, with a real journald and a recorded NOTIFY_SOCKET:
#   1. READY=1 comes before any create: the recorder's receipt time of READY=1 (an upper
#      bound of when it was sent) is before the journal's timestamp of every CREATE_SENT;
#      the STARTED entry (logged right after READY=1) precedes every CREATE_SENT in the
#      journal's own order; and the emulator had counted no create when READY=1 was seen
#      (its --latency-ms keeps even a create sent at once from being counted yet);
#   2. the example manifests converge: per notebook, CREATE_ACCEPTED and STATUS_CHANGED
#      RUNNING with NOTEBOOK= and INSTANCE_ID= (the emulator's id); `journalctl
#      NOTEBOOK=x` is x's history, in order; STATUS= keeps up; one instance per name;
#   3. SIGTERM: STOPPING=1, the STOPPING entry, exit 0.
# With --faults (t-daemon-faults.sh) the emulator answers 20% 500s and 10% 429s on every
# route (and for sure the first request of each kind): the same must hold.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

FAULTS=0
[ "${1:-}" = --faults ] && FAULTS=1

AK=DAEMONBASICAK0000001
SK=daemonBasicSecretKey0123456789abcdefgHI
TOKEN=daemon-basic-control-token # the test's own listing; notebookd signs with AK/SK
PROJECT=0b0b0c0c0d0d0e0e0f0f101011111212
LATENCY_MS=1500
eval "$(nb_message_ids | sed 's/^\([A-Z_]*\) \([0-9a-f]*\)$/\1=\2/')"

nb_start_journald
emu_faults=()
[ "$FAULTS" = 1 ] && emu_faults=(--fail-5xx-rate 0.2 --throttle-rate 0.1 --retry-after 1 --retry-after-header --fail-5xx-next 1 --throttle-next 1)
nb_start_emulator --ak "$AK" --sk "$SK" --token "$TOKEN" --project-id "$PROJECT" \
        --create-delay-ms 300 --latency-ms "$LATENCY_MS" "${emu_faults[@]}"
nb_start_notify

# ---- local helpers ----
M=$T/manifests
S=$T/state
# The emulator's listing through the control token (not notebookd's code).
remote_list() {
        curl -fsS -H "X-Auth-Token: $TOKEN" -H "X-Project-Id: $PROJECT" \
                "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances?de_type=Notebook"
}
# This daemon's entries, as JSON lines, in the journal's order.
djournal() { nb_journal_json _PID="$DAEMON_PID" "$@"; }


# ---- the tree, the config, the credentials ----
mkdir -p "$M"
cp -R "$NB_SRCDIR/manifests/." "$M/"
"$NOTEBOOKD" --json check "$M" >"$T/check.json" || nb_fail "check of the example manifests failed: $(cat "$T/check.json")"
jq -r '.instances_valid[].name' "$T/check.json" | sort >"$T/expected"
n=$(wc -l <"$T/expected")
[ "$n" -ge 3 ] || nb_fail "expected at least 3 example notebooks, check found $n"

nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$M" "$S" "resync_interval: 10m"

# ---- 1. READY=1 before any create ----
nb_step "start: READY=1 before any create ($n notebooks, emulator latency ${LATENCY_MS} ms, faults: $FAULTS)"
nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
        -u HUAWEICLOUD_SDK_PROJECT_ID CREDENTIALS_DIRECTORY="$T/creds" \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
DAEMON_PID=$NB_PID
ready=$(nb_wait_for_line "$NB_NOTIFY_LOG" '(^| |\\n)READY=1' "$NB_TIMEOUT" 1 "$DAEMON_PID")
# Corroboration, not the proof: with every request held LATENCY_MS by the emulator and a
# listing due before any create, nothing can be counted this soon after READY=1.
creates_at_ready=$(nb_emulator_stats | jq '.creates.requests')
nb_assert_eq 0 "$creates_at_ready" "creates the emulator had counted when READY=1 arrived"
# The first requests are already held (and keep their delay); the rest need none.
nb_emulator_config latency_ms=0
ready_us=${ready%% *}
nb_assert_match '^[0-9]{16}$' "$ready_us" "READY=1 receipt time"
nb_assert_eq 1 "$(grep -cE '(^| |\\n)READY=1' "$NB_NOTIFY_LOG")" "READY=1 notifications at start-up"

# ---- 2. convergence ----
nb_step "the examples converge to RUNNING"
nb_wait_journal_names "$n" '"STATUS":"RUNNING"' MESSAGE_ID="$MESSAGE_STATUS_CHANGED" _PID="$DAEMON_PID"
nb_wait_journal_names "$n" . MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" _PID="$DAEMON_PID"
nb_wait_for_line "$NB_NOTIFY_LOG" "STATUS=$n desired, $n running, 0 creating" "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null

djournal >"$T/journal.json"
# The test's own listing must not meet a fault (the daemon has converged by now).
[ "$FAULTS" = 0 ] || nb_emulator_config 'fault_routes=none'
remote_list >"$T/remote.json"
nb_assert_eq "$n" "$(jq '.total_count' "$T/remote.json")" "instances in the emulator"

# READY=1's receipt time is an upper bound of its sending; a journal timestamp is taken
# when journald receives the entry (the kernel's, in _SOURCE_REALTIME_TIMESTAMP), after
# the daemon sent it. receipt(READY) < journal(CREATE_SENT) orders the sends.
jq -r --arg id "$MESSAGE_CREATE_SENT" 'select(.MESSAGE_ID == $id) | (._SOURCE_REALTIME_TIMESTAMP // .__REALTIME_TIMESTAMP)' \
        "$T/journal.json" | sort -n >"$T/create-sent-times"
[ -s "$T/create-sent-times" ] || nb_fail "no CREATE_SENT entry in the journal"
first_create_us=$(head -n 1 "$T/create-sent-times")
[ "$ready_us" -lt "$first_create_us" ] ||
        nb_fail "READY=1 was received at $ready_us, after the first CREATE_SENT ($first_create_us)"
nb_step "READY=1 received $(((first_create_us - ready_us) / 1000)) ms before the first create was logged"
# The journal's own order (one process, one socket): STARTED, sent right after READY=1,
# precedes every CREATE_SENT.
jq -r '.MESSAGE_ID // "-"' "$T/journal.json" >"$T/journal-ids"
started_at=$(grep -nxm1 "$MESSAGE_STARTED" "$T/journal-ids" | cut -d: -f1)
first_sent_at=$(grep -nxm1 "$MESSAGE_CREATE_SENT" "$T/journal-ids" | cut -d: -f1)
[ -n "$started_at" ] || nb_fail "no STARTED entry in the journal"
[ "$started_at" -lt "$first_sent_at" ] || nb_fail "STARTED (entry $started_at) after the first CREATE_SENT (entry $first_sent_at)"

# Per notebook: accepted with the emulator's id, RUNNING with the same id, and its
# history (journalctl NOTEBOOK=x) is only about it, in order.
for name in $(cat "$T/expected"); do
        id=$(jq -r --arg n "$name" '.instances[] | select(.name == $n) | .id' "$T/remote.json")
        nb_assert_match '^[0-9a-f-]{36}$' "$id" "$name: the emulator's instance id"
        nb_assert_eq RUNNING "$(jq -r --arg n "$name" '.instances[] | select(.name == $n) | .status' "$T/remote.json")" \
                "$name: status in the emulator"
        acc=$(jq -c --arg n "$name" --arg id "$MESSAGE_CREATE_ACCEPTED" \
                'select(.MESSAGE_ID == $id and .NOTEBOOK == $n)' "$T/journal.json")
        nb_assert_eq 1 "$(printf '%s\n' "$acc" | grep -c .)" "$name: CREATE_ACCEPTED entries"
        nb_assert_eq "$id" "$(jq -r .INSTANCE_ID <<<"$acc")" "$name: CREATE_ACCEPTED INSTANCE_ID"
        run=$(jq -c --arg n "$name" --arg id "$MESSAGE_STATUS_CHANGED" \
                'select(.MESSAGE_ID == $id and .NOTEBOOK == $n and .STATUS == "RUNNING")' "$T/journal.json" | head -n 1)
        nb_assert_eq "$id" "$(jq -r .INSTANCE_ID <<<"$run")" "$name: STATUS_CHANGED RUNNING INSTANCE_ID"

        nb_journal_json NOTEBOOK="$name" >"$T/history-$name.json"
        bad=$(jq -r --arg n "$name" 'select(.NOTEBOOK != $n) | .MESSAGE' "$T/history-$name.json")
        [ -z "$bad" ] || nb_fail "journalctl NOTEBOOK=$name shows another notebook's entry: $bad"
        order=$(jq -r --arg s "$MESSAGE_CREATE_SENT" --arg a "$MESSAGE_CREATE_ACCEPTED" --arg c "$MESSAGE_STATUS_CHANGED" '
                if .MESSAGE_ID == $s then "sent" elif .MESSAGE_ID == $a then "accepted"
                elif .MESSAGE_ID == $c and .STATUS == "RUNNING" then "running" else empty end' "$T/history-$name.json" |
                awk '!seen[$0]++' | paste -sd' ')
        nb_assert_eq "sent accepted running" "$order" "$name: history in journalctl NOTEBOOK=$name"
done

# STATUS= kept current: more than the start-up one, and the final one counts them all.
n_status=$(grep -c "STATUS=" "$NB_NOTIFY_LOG" || true)
[ "$n_status" -ge 2 ] || nb_fail "only $n_status STATUS= notifications"
nb_assert_file_match "$NB_NOTIFY_LOG" "STATUS=$n desired, $n running, 0 creating, 0 waiting, 0 failed, 0 rejected, 0 retrying, 0 invalid manifests" \
        "final STATUS="

# Exactly one instance per name, none refused as a duplicate, no protocol violation.
nb_emulator_stats >"$T/stats.json"
jq -r '.creates.by_name | keys[]' "$T/stats.json" | sort >"$T/created"
diff -u "$T/expected" "$T/created" >&2 || nb_fail "create requests were not for exactly the desired names"
bad=$(jq -r '.creates.by_name | to_entries[] | select(.value.created != 1 or .value.duplicates != 0) | "\(.key) \(.value)"' "$T/stats.json")
[ -z "$bad" ] || nb_fail "not exactly one instance per name: $bad"
nb_assert_eq "$n" "$(jq '.instances.live' "$T/stats.json")" "live instances"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats.json")" \
        "protocol violations ($(jq -c '.recent_violations' "$T/stats.json"))"
if [ "$FAULTS" = 1 ]; then
        f500=$(jq '.faults.internal_500' "$T/stats.json")
        f429=$(jq '.faults.throttled_429' "$T/stats.json")
        [ "$f500" -ge 1 ] && [ "$f429" -ge 1 ] || nb_fail "faults were not injected (500: $f500, 429: $f429)"
        nb_step "converged through $f500 injected 500s and $f429 429s ($(jq '.requests' "$T/stats.json") requests)"
else
        nb_assert_eq 0 "$(jq '[.by_status | to_entries[] | select(.key | startswith("4") or startswith("5"))] | length' "$T/stats.json")" \
                "error answers on a fault-free emulator ($(jq -c '.by_status' "$T/stats.json"))"
fi
nb_assert_file_no_match "$T/journal.json" "$SK" "journal (secret key)"

# ---- 3. SIGTERM ----
nb_step "SIGTERM: STOPPING=1, exit 0"
nb_stop "$DAEMON_PID" TERM
nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM"
nb_assert_file_no_match "$T/daemon.log" 'Sanitizer|runtime error' "daemon output (sanitizers)"
nb_assert_file_match "$NB_NOTIFY_LOG" '(^| |\\n)STOPPING=1' "notify log (STOPPING=1)"
e=$(djournal MESSAGE_ID="$MESSAGE_STOPPING")
[ -n "$e" ] || nb_fail "no STOPPING entry in the journal"
nb_assert_eq 1 "$(printf '%s\n' "$e" | grep -c .)" "STOPPING entries"

echo PASS
