#!/usr/bin/env bash
# `notebookd run`'s periodic resync, with resync_interval 10s (the
# minimum): the manifests do not change, only the remote side does.
#   1. an instance deleted behind the daemon's back (the emulator's /_emulator/delete):
#      INSTANCE_MISSING with NOTEBOOK= and the old INSTANCE_ID=, then it is created
#      again: 2 creates for that name, one live instance, the others untouched;
#   2. an instance stuck in a failed status (forced through /_emulator/status): reported
#      once (INSTANCE_FAILED with STATUS=), not re-created, not reported again by the
#      next resync.
# Each step waits for a resync (>= 9 s with the jitter): this test takes a while.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=DAEMONRESYNCAK000001
SK=daemonResyncSecretKey0123456789abcdefGH
TOKEN=daemon-resync-control-token
PROJECT=3a3b3c3d3e3f40414243444546474849
eval "$(nb_message_ids | sed 's/^\([A-Z_]*\) \([0-9a-f]*\)$/\1=\2/')"

nb_start_journald
nb_start_emulator --ak "$AK" --sk "$SK" --token "$TOKEN" --project-id "$PROJECT" --create-delay-ms 100
nb_start_notify

# ---- local helpers ----
M=$T/manifests
S=$T/state
djournal() { nb_journal_json _PID="$DAEMON_PID" "$@"; }
remote_list() {
        curl -fsS -H "X-Auth-Token: $TOKEN" -H "X-Project-Id: $PROJECT" \
                "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances?de_type=Notebook"
}
remote_id() { remote_list | jq -r --arg n "$1" '[.instances[] | select(.name == $n and .status != "DELETED") | .id] | join(" ")'; }
# The k-th CREATE_ACCEPTED of NAME, and its STATUS_CHANGED RUNNING after it; prints
# the accepted entry.
wait_created() { # NAME K
        local e
        e=$(nb_wait_for_journal . "$2" MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" NOTEBOOK="$1" _PID="$DAEMON_PID")
        nb_wait_for_journal '"STATUS":"RUNNING"' "$2" MESSAGE_ID="$MESSAGE_STATUS_CHANGED" NOTEBOOK="$1" _PID="$DAEMON_PID" >/dev/null
        printf '%s\n' "$e"
}

mkdir -p "$M"
for name in r-keep r-deleted r-failing; do
        nb_write_manifest "$M/$name.yaml" "$name"
done
nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$M" "$S" "resync_interval: 10s"

nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
        -u HUAWEICLOUD_SDK_PROJECT_ID CREDENTIALS_DIRECTORY="$T/creds" \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
DAEMON_PID=$NB_PID
nb_wait_for_line "$NB_NOTIFY_LOG" '(^| |\\n)READY=1' "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null
for name in r-keep r-deleted r-failing; do
        wait_created "$name" 1 >/dev/null
done
keep_id=$(remote_id r-keep)
old_id=$(remote_id r-deleted)
nb_assert_match '^[0-9a-f-]{36}$' "$old_id" "r-deleted's instance id"

# ---- 1. deleted behind the daemon's back ----
nb_step "an instance deleted behind the daemon's back is reported and created again"
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/delete?name=r-deleted" >/dev/null
nb_assert_eq "" "$(remote_id r-deleted)" "r-deleted in the emulator after the delete"
t0=$(date +%s%6N)
e=$(nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_INSTANCE_MISSING" NOTEBOOK=r-deleted _PID="$DAEMON_PID")
nb_assert_eq "$old_id" "$(jq -r .INSTANCE_ID <<<"$e")" "INSTANCE_MISSING INSTANCE_ID (the deleted one)"
nb_assert_eq 4 "$(jq -r .PRIORITY <<<"$e")" "INSTANCE_MISSING PRIORITY (a warning)"
missing_us=$(jq -r '._SOURCE_REALTIME_TIMESTAMP // .__REALTIME_TIMESTAMP' <<<"$e")
nb_step "noticed by the resync $(((missing_us - t0) / 1000)) ms after the delete (interval 10 s +-10%)"
acc=$(wait_created r-deleted 2)
new_id=$(remote_id r-deleted)
nb_assert_match '^[0-9a-f-]{36}$' "$new_id" "r-deleted's new instance (exactly one live)"
nb_assert_ne "$old_id" "$new_id" "r-deleted's new instance id"
nb_assert_eq "$new_id" "$(jq -r .INSTANCE_ID <<<"$acc")" "second CREATE_ACCEPTED INSTANCE_ID"
nb_emulator_stats >"$T/stats1.json"
nb_assert_eq 2 "$(jq '.creates.by_name["r-deleted"].requests' "$T/stats1.json")" "create requests for r-deleted"
nb_assert_eq 2 "$(jq '.creates.by_name["r-deleted"].created' "$T/stats1.json")" "instances made for r-deleted"
for name in r-keep r-failing; do
        nb_assert_eq 1 "$(jq --arg n "$name" '.creates.by_name[$n].requests' "$T/stats1.json")" "create requests for $name"
done
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats1.json")" "duplicate creates"
nb_assert_eq 3 "$(jq '.instances.live' "$T/stats1.json")" "live instances"
nb_assert_eq "$keep_id" "$(remote_id r-keep)" "r-keep's instance (untouched)"
"$NOTEBOOKD" -c "$T/config.yaml" --json status >"$T/status.json"
nb_assert_eq "$new_id" "$(jq -r '.instances[] | select(.name == "r-deleted") | .instance_id' "$T/status.json")" \
        "r-deleted's recorded instance id"

# ---- 2. stuck in a failed status ----
nb_step "an instance stuck in a failed status is reported once, not re-created"
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/status?name=r-failing&status=CREATE_FAILED" >/dev/null
failing_id=$(remote_id r-failing)
e=$(nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_INSTANCE_FAILED" NOTEBOOK=r-failing _PID="$DAEMON_PID")
nb_assert_eq CREATE_FAILED "$(jq -r .STATUS <<<"$e")" "INSTANCE_FAILED STATUS"
nb_assert_eq "$failing_id" "$(jq -r .INSTANCE_ID <<<"$e")" "INSTANCE_FAILED INSTANCE_ID"
# Another resync after the report: the pass that reported it finishes, then one more.
# Neither repeats the report nor creates anything.
djournal >"$T/journal-now.json" # one snapshot for both counts
k=$(jq -r --arg p "$MESSAGE_PASS_FINISHED" 'select(.MESSAGE_ID == $p) | .MESSAGE_ID' "$T/journal-now.json" | wc -l)
done_after=$(jq -r --arg f "$MESSAGE_INSTANCE_FAILED" --arg p "$MESSAGE_PASS_FINISHED" \
        'if .MESSAGE_ID == $f then "failed" elif .MESSAGE_ID == $p then "pass" else empty end' "$T/journal-now.json" |
        awk '$0 == "failed" { s = 1; n = 0; next } s && $0 == "pass" { n++ } END { print n + 0 }')
[ "$done_after" -ge 2 ] || nb_wait_for_journal . $((k + 2 - done_after)) MESSAGE_ID="$MESSAGE_PASS_FINISHED" _PID="$DAEMON_PID" >/dev/null
nb_assert_eq 1 "$(djournal MESSAGE_ID="$MESSAGE_INSTANCE_FAILED" NOTEBOOK=r-failing | wc -l)" \
        "INSTANCE_FAILED entries for r-failing after another resync"
nb_emulator_stats >"$T/stats2.json"
nb_assert_eq 1 "$(jq '.creates.by_name["r-failing"].requests' "$T/stats2.json")" "create requests for r-failing"
nb_assert_eq 4 "$(jq '.creates.requests' "$T/stats2.json")" "create requests in total"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats2.json")" \
        "protocol violations ($(jq -c '.recent_violations' "$T/stats2.json"))"
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=3 desired, 2 running, 0 creating, 0 waiting, 1 failed' "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null

nb_stop "$DAEMON_PID" TERM
nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM"
nb_assert_file_no_match "$T/daemon.log" 'Sanitizer|runtime error' "daemon output (sanitizers)"
echo PASS
