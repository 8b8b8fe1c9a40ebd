#!/usr/bin/env bash
# Fault: the credentials rotated. The key pair is replaced in IAM
# (the emulator's POST /_emulator/credentials: the old AK no longer exists, and the
# gateway says so as the cloud does, 401 APIG.0301 "Get secretKey failed ... ak not
# exist"). The daemon, still signing with the old files, finds out at its next listing:
# it keeps running, pauses sending, and says so (journal, STATUS=). The new key pair is
# written to the credential files and SIGHUP sent: it converges at once, long before
# auth_retry_interval (10 minutes here, longer than the test may take). The requests the
# emulator saw are held against the minimum. Then the key pair is rotated once more and
# only written to the files, with no SIGHUP: the daemon notices the files itself.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=FAULTCREDSOLDAK00001
SK=faultCredsOldSecretKey0123456789abcdefgh
AK2=FAULTCREDSNEWAK00002
SK2=faultCredsNewSecretKey0123456789abcdefgh
AK3=FAULTCREDSNEWAK00003
SK3=faultCredsThirdSecretKey123456789abcdefg
PROJECT=1d2e3f405162738495a6b7c8d9e0f1a2
M=$T/manifests
S=$T/state

nb_start_journald
nb_start_notify
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0
mkdir -p "$M"
nb_write_manifest "$M/a.yaml" creds-a
nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$M" "$S" "ak_file: $T/creds/ak" "sk_file: $T/creds/sk" "auth_retry_interval: 10m"

nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u CREDENTIALS_DIRECTORY \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
daemon=$NB_PID

nb_step "the old key: the first manifest converges"
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=1 desired, 1 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null

nb_step "the key pair rotated in IAM, a new manifest: paused, and the journal says why"
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/credentials?ak=$AK2&sk=$SK2" >/dev/null
nb_write_manifest "$M/b.yaml" creds-b
line=$(nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=Paused: authentication failed, next try in [0-9]+s' "$NB_TIMEOUT" 1 "$daemon")
echo "$line" >&2
msg=$(nb_wait_for_journal . 1 MESSAGE_ID=c4b4fc991bdc494b9d80cfbbabb4ad53 _PID="$daemon" | jq -r .MESSAGE)
echo "journal: $msg" >&2
nb_assert_match "the AK/SK credentials were rejected \\(HTTP 401 APIG\\.0301: .*err:ak not exist\\)" "$msg" "the auth message"
nb_assert_match "using .*$T/creds/ak" "$msg" "the auth message names the files"
kill -0 "$daemon" || nb_fail "the daemon exited"
nb_emulator_stats >"$T/stats-paused.json"
nb_assert_eq 1 "$(jq '.creates.requests' "$T/stats-paused.json")" "creates sent with the old key"
nb_assert_eq 1 "$(jq '.protocol_violations.unknown_ak' "$T/stats-paused.json")" "requests signed with the old key"

nb_step "the new key pair on disk and SIGHUP: converges at once, not after auth_retry_interval"
nb_write_creds "$AK2" "$SK2"
kill -HUP "$daemon"
nb_wait_for_journal . 1 MESSAGE_ID=22d9a72b4890455691dcdcd84bf08b8c NOTEBOOK=creds-b _PID="$daemon" >/dev/null
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=2 desired, 2 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_emulator_stats >"$T/stats-end.json"
nb_assert_eq 2 "$(jq '.creates.created' "$T/stats-end.json")" "instances created"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats-end.json")" "duplicate creates"
nb_assert_eq 1 "$(jq '.protocol_violations.unknown_ak' "$T/stats-end.json")" "requests signed with the old key"
nb_assert_eq false "$(jq '.auth.ak_locked' "$T/stats-end.json")" "AK locked"

# The minimum: a listing and a create per manifest, and the one listing that finds the
# old key refused. No slack: the daemon sends exactly one request per interval while
# paused, and the interval is longer than the test.
nb_request_budget "$(nb_api_requests)" 5 5

nb_step "rotated again, the new pair written and no SIGHUP: the pause ends without it"
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/credentials?ak=$AK3&sk=$SK3" >/dev/null
nb_write_manifest "$M/c.yaml" creds-c
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=Paused: authentication failed' "$NB_TIMEOUT" 2 "$daemon" >/dev/null
nb_write_creds "$AK3" "$SK3"
# auth_retry_interval is 10 minutes: converging within NB_TIMEOUT is the files' doing
nb_wait_for_journal 'Credential files changed while sending is paused' 1 _PID="$daemon" >/dev/null
nb_wait_for_journal . 1 MESSAGE_ID=22d9a72b4890455691dcdcd84bf08b8c NOTEBOOK=creds-c _PID="$daemon" >/dev/null
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=3 desired, 3 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_emulator_stats >"$T/stats-files.json"
nb_assert_eq 3 "$(jq '.creates.created' "$T/stats-files.json")" "instances created"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats-files.json")" "duplicate creates"
nb_assert_eq 2 "$(jq '.protocol_violations.unknown_ak' "$T/stats-files.json")" "requests signed with a retired key"
nb_stop "$daemon"
nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM"
nb_step "ok"
