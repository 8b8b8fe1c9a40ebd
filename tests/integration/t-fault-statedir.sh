#!/usr/bin/env bash
# Fault: the state directory read-only, then full, both while the
# daemon runs with its database open (the case that matters: at start-up it refuses to
# run at all). The state directory lives on a small tmpfs of its own.
#   read-only: every write there fails with EROFS (tests/tools/read-only-dir.so: Linux
#     will not remount a filesystem read-only under a file open for writing);
#   full: the tmpfs filled with a file, so the database's writes fail with ENOSPC.
# In each, a new manifest arrives: the daemon keeps running, pauses creates (no create
# leaves without a durable intent: the emulator sees none), says so in the journal and in
# STATUS= with the next try, and converges once the fault clears: by itself at that next
# try after the read-only phase, at once on SIGHUP after the disk is freed. The requests
# the emulator saw are held against the minimum.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

[ -e "$BUILD/read-only-dir.so" ] || nb_fail "$BUILD/read-only-dir.so missing: run make"
AK=FAULTSTATEAK00000001
SK=faultStateSecretKey0123456789abcdefghijK
PROJECT=3f405162738495a6b7c8d9e0f1a2b3c4
M=$T/manifests
FS=$T/fs
S=$FS/state
STATE_ERROR=b102755dd73b4d2697f79b0c696299be
ACCEPTED=22d9a72b4890455691dcdcd84bf08b8c

nb_start_journald
nb_start_notify
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0
mkdir -p "$M" "$FS"
mount -t tmpfs -o size=2m,mode=0755 nb-state "$FS"
nb_at_exit "umount -l '$FS' 2>/dev/null"
mkdir -p "$S"
for i in 1 2; do nb_write_manifest "$M/ok-$i.yaml" state-ok-$i; done
nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$M" "$S" "ak_file: $T/creds/ak" "sk_file: $T/creds/sk"

nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u CREDENTIALS_DIRECTORY \
        LD_PRELOAD="$BUILD/read-only-dir.so" NB_READONLY_DIR="$S" NB_READONLY_FLAG="$T/read-only" \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
daemon=$NB_PID

nb_step "healthy: two manifests converge"
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=2 desired, 2 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null

paused_re='STATUS=Paused: the state database cannot be written, next try in [0-9]+s'
nb_step "the state directory read-only, a new manifest: creates paused"
touch "$T/read-only"
nb_write_manifest "$M/ro.yaml" state-ro
line=$(nb_wait_for_line "$NB_NOTIFY_LOG" "$paused_re" "$NB_TIMEOUT" 1 "$daemon")
echo "$line" >&2
nb_assert_match '3 desired, 2 running' "$line" "STATUS= while read-only"
msg=$(nb_wait_for_journal . 1 MESSAGE_ID=$STATE_ERROR _PID="$daemon" | jq -r .MESSAGE)
echo "journal: $msg" >&2
nb_assert_match 'read-only|readonly' "$msg" "the state error names the cause"
kill -0 "$daemon" || nb_fail "the daemon exited"
nb_assert_eq 2 "$(nb_emulator_stats | jq '.creates.requests')" "creates sent (none while read-only)"

nb_step "writable again: the daemon's own next try converges"
rm "$T/read-only"
# the next try is a minute after the failure (ENGINE_LIST_RETRY_MAX_MS): a longer wait
NB_TIMEOUT=100 nb_wait_for_journal . 1 MESSAGE_ID=$ACCEPTED NOTEBOOK=state-ro _PID="$daemon" >/dev/null
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=3 desired, 3 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_assert_eq 3 "$(nb_emulator_stats | jq '.creates.requests')" "creates sent"

nb_step "the state directory's filesystem full, a new manifest: creates paused"
dd if=/dev/zero of="$FS/filler" bs=64k 2>/dev/null || true
[ "$(df --output=avail -k "$FS" | tail -n 1 | tr -d ' ')" -eq 0 ] || nb_fail "$FS is not full"
nb_write_manifest "$M/full.yaml" state-full
# the pause of this phase: the first one may have said so more than once
line=$(nb_wait_for_line "$NB_NOTIFY_LOG" "$paused_re; 4 desired" "$NB_TIMEOUT" 1 "$daemon")
echo "$line" >&2
nb_assert_match '4 desired, 3 running' "$line" "STATUS= while full"
msg=$(nb_wait_for_journal '"MESSAGE":"[^"]*(full|space)' 1 MESSAGE_ID=$STATE_ERROR _PID="$daemon" | jq -r .MESSAGE)
echo "journal: $msg" >&2
kill -0 "$daemon" || nb_fail "the daemon exited"
nb_assert_eq 3 "$(nb_emulator_stats | jq '.creates.requests')" "creates sent (none while full)"

nb_step "space freed and SIGHUP: converges at once"
rm "$FS/filler"
kill -HUP "$daemon"
nb_wait_for_journal . 1 MESSAGE_ID=$ACCEPTED NOTEBOOK=state-full _PID="$daemon" >/dev/null
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=4 desired, 4 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_emulator_stats >"$T/stats-end.json"
nb_assert_eq 4 "$(jq '.creates.created' "$T/stats-end.json")" "instances created"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats-end.json")" "duplicate creates"
[ "$(sqlite3 "$S"/*.db 'PRAGMA integrity_check' 2>&1)" = ok ] || nb_fail "integrity_check: $(sqlite3 "$S"/*.db 'PRAGMA integrity_check' 2>&1)"

# The minimum: a listing and two creates at first; for each fault, the create once it
# clears (the new manifest and the retry are incremental passes: they list nothing);
# and the listing of the full pass that SIGHUP starts.
nb_request_budget "$(nb_api_requests)" 6 9
nb_stop "$daemon"
nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM"
nb_step "ok"
