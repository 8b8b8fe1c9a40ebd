#!/usr/bin/env bash
# Fault: the local clock skewed past the gateway's 15 minutes.
# The daemon runs under libfaketime reading its offset from a file it re-reads on every
# call, so the skew comes and goes while it runs (the monotonic clock, its timers, stays
# true). With the clock 30 minutes ahead the emulator refuses every signature as the
# cloud does (401 APIG.0301 "signature expired"): the daemon keeps running, pauses,
# says that the clock is off and by how much (journal and STATUS=), sends nothing but
# its periodic retry, and once the clock is right again converges by itself at the next
# retry. The requests the emulator saw are held against the minimum.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

FAKETIME_LIB=${FAKETIME_LIB:-/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1}
[ -e "$FAKETIME_LIB" ] || FAKETIME_LIB=$(find /usr/lib -name libfaketime.so.1 -print -quit 2>/dev/null)
[ -n "$FAKETIME_LIB" ] && [ -e "$FAKETIME_LIB" ] || nb_fail "libfaketime missing: apt-get install faketime (make deps)"
[ -e "$BUILD/real-timers.so" ] || nb_fail "$BUILD/real-timers.so missing: run make"

AK=FAULTCLOCKAK00000001
SK=faultClockSecretKey0123456789abcdefghijK
PROJECT=0c1d2e3f405162738495a6b7c8d9e0f1
M=$T/manifests
S=$T/state
RETRY_S=10

nb_start_journald
nb_start_notify
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0
mkdir -p "$M"
nb_write_manifest "$M/a.yaml" clock-a
nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$M" "$S" "ak_file: $T/creds/ak" "sk_file: $T/creds/sk" "auth_retry_interval: ${RETRY_S}s"

# libfaketime's offset, re-read at every clock call (FAKETIME_NO_CACHE)
skew() { printf '%s\n' "$1" >"$T/faketime.new" && mv "$T/faketime.new" "$T/faketime"; }
skew +0
# real-timers.so first: libfaketime would move the daemon's monotonic timers too (see
# tests/tools/real-timers.c). ASan (SANITIZE=1) wants its runtime first: told not to mind.
nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u CREDENTIALS_DIRECTORY -u FAKETIME \
        LD_PRELOAD="$BUILD/real-timers.so $FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$T/faketime" FAKETIME_NO_CACHE=1 \
        FAKETIME_DONT_FAKE_MONOTONIC=1 ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
daemon=$NB_PID

nb_step "the clock right: the first manifest converges"
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=1 desired, 1 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null

nb_step "the clock 30 minutes ahead, a new manifest: paused, and the clock is named"
skew +30m
nb_write_manifest "$M/b.yaml" clock-b
line=$(nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=Paused: authentication failed \(the local clock is [0-9]+s ahead of the API.s\), next try in [0-9]+s' "$NB_TIMEOUT" 1 "$daemon")
echo "$line" >&2
nb_assert_match 'clock is 1(79[0-9]|80[0-9])s ahead' "$line" "the offset in STATUS="
msg=$(nb_wait_for_journal . 1 MESSAGE_ID=c4b4fc991bdc494b9d80cfbbabb4ad53 _PID="$daemon" | jq -r .MESSAGE)
echo "journal: $msg" >&2
nb_assert_match 'the local clock is 1(79[0-9]|80[0-9]) s ahead of the API.s \(its Date: ' "$msg" "the auth message"
nb_assert_match 'set the clock right \(NTP\)' "$msg" "the auth message"
nb_assert_match 'signature expired, signature time:[0-9T]+Z,server time:[0-9T]+Z' "$msg" "the gateway's words"
kill -0 "$daemon" || nb_fail "the daemon exited"
nb_emulator_stats >"$T/stats-paused.json"
nb_assert_eq 1 "$(jq '.creates.requests' "$T/stats-paused.json")" "creates sent while the clock is off"
refused=$(jq '.protocol_violations.clock_skew' "$T/stats-paused.json")
[ "$refused" -ge 1 ] || nb_fail "the emulator refused no signature for its date"
nb_assert_eq false "$(jq '.auth.ak_locked' "$T/stats-paused.json")" "AK locked"

nb_step "the clock right again: the next retry converges, without a reload"
skew +0
nb_wait_for_journal . 1 MESSAGE_ID=22d9a72b4890455691dcdcd84bf08b8c NOTEBOOK=clock-b _PID="$daemon" >/dev/null
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=2 desired, 2 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_emulator_stats >"$T/stats-end.json"
nb_assert_eq 2 "$(jq '.creates.created' "$T/stats-end.json")" "instances created"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats-end.json")" "duplicate creates"
refused=$(jq '.protocol_violations.clock_skew' "$T/stats-end.json")
echo "signatures refused for the clock: $refused" >&2

# The minimum: the listing at start, a create for each manifest, and the one request
# that finds the clock off (the create of clock-b: a new manifest is an incremental pass,
# which lists nothing). The bound allows the retries (one request per ${RETRY_S}s) while
# this test observes the pause; a retry loop would blow it.
nb_request_budget "$(nb_api_requests)" 4 8
nb_stop "$daemon"
nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM"
nb_step "ok"
