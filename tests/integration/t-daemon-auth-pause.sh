#!/usr/bin/env bash
# The daemon after an authentication failure never stalls: it pauses sending,
# STATUS= says so and when the next try is, it tries again by itself every
# auth_retry_interval (one request, so a wrong key is never locked), and a reload with
# fixed credentials ends the pause at once. Counted at the emulator: between the
# retries nothing is sent.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=AUTHPAUSEAK000000001
SK=authPauseSecretKey0123456789abcdefghijKL
PROJECT=7a8b9c0d1e2f30415263748596a7b8c9
M=$T/manifests
S=$T/state

nb_start_journald
nb_start_notify
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0
mkdir -p "$M"
nb_write_manifest "$M/a.yaml" pause-a
nb_write_creds "$AK" "not-the-secret-key-0123456789abcdefghij"
nb_write_config "$PROJECT" "$M" "$S" "ak_file: $T/creds/ak" "sk_file: $T/creds/sk" "auth_retry_interval: 10s"

signed_requests() { # API requests that reached authentication, good or bad
        nb_emulator_stats | jq '(.protocol_violations.bad_signature // 0) + ([.by_route_status.list // {} | to_entries[] | select(.key != "401") | .value] | add // 0)'
}

nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u CREDENTIALS_DIRECTORY \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
daemon=$NB_PID

nb_step "a wrong SK: paused, and STATUS= says when the next try is"
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=Paused: authentication failed, next try in [0-9]+s' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_wait_for_journal . 1 MESSAGE_ID=c4b4fc991bdc494b9d80cfbbabb4ad53 _PID="$daemon" >/dev/null
nb_assert_eq 1 "$(signed_requests)" "requests after the first failure"

nb_step "it tries again by itself after auth_retry_interval, once"
nb_wait_for_journal '"MESSAGE":"Retrying after the authentication failure"' 1 _PID="$daemon" >/dev/null
nb_wait_for_journal . 2 MESSAGE_ID=c4b4fc991bdc494b9d80cfbbabb4ad53 _PID="$daemon" >/dev/null
nb_assert_eq 2 "$(signed_requests)" "requests after the retry"
nb_emulator_stats >"$T/stats-1.json"
nb_assert_eq false "$(jq '.auth.ak_locked' "$T/stats-1.json")" "AK locked"
nb_assert_eq 0 "$(jq '.creates.requests' "$T/stats-1.json")" "creates sent while paused"

nb_step "fixed credentials and SIGHUP end the pause at once"
printf '%s' "$SK" >"$T/creds/sk"
kill -HUP "$daemon"
nb_wait_for_journal . 1 MESSAGE_ID=22d9a72b4890455691dcdcd84bf08b8c NOTEBOOK=pause-a _PID="$daemon" >/dev/null
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=1 desired, 1 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_stop "$daemon"

nb_step "ok"
