#!/usr/bin/env bash
# `credentials: metadata`: keyless credentials from the ECS metadata service, served by
# the emulator on loopback (metadata_endpoint:). Its keys rotate every 2 s, each living
# 1 s past its successor's issue (the cloud: an hour, 10 minutes of overlap), and the API
# refuses a generation past its expiry with a 401, so a daemon that does not renew in
# time is caught. Parts:
#   1. run: creates keep succeeding across several rotations, no 401 at all, requests
#      signed with several AKs, X-Security-Token checked against each AK; no AK, SK,
#      security token or session token the service handed out in the journal, the state
#      or the metrics file;
#   2. once: the metadata service down at start (503 three times): the fetch is
#      retried with a growing wait, then the create is made;
#   3. no agency: `once` exits 2 saying "configure a cloud service agency for this ECS";
#      `run` pauses with the authentication MESSAGE_ID and that sentence, and resumes by
#      itself once the agency is there.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

PROJECT=0f1e2d3c4b5a69788796a5b4c3d2e1f0
AGENCY='configure a cloud service agency for this ECS'
AUTH_FAILED=c4b4fc991bdc494b9d80cfbbabb4ad53
CREATE_ACCEPTED=22d9a72b4890455691dcdcd84bf08b8c

nb_step "the shipped unit leaves 169.254.169.254 reachable (no IP address filter)"
nb_assert_file_no_match "$NB_SRCDIR/units/notebookd.service" '^IPAddress(Deny|Allow)=' "units/notebookd.service"

# the daemon's environment: no credentials but the metadata service's
clean_env=(env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK
        -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID)

meta() { nb_emulator_stats | jq -r ".metadata.$1"; }

nb_start_journald
nb_start_notify

# ---- 1. rotation under load ----
nb_step "run: creates across several key rotations"
nb_start_emulator --project-id "$PROJECT" --create-delay-ms 0 --metadata-period-ms 2000 --metadata-overlap-ms 1000
M=$T/m1
mkdir -p "$M"
nb_write_config "$PROJECT" "$M" "$T/s1" "credentials: metadata" "metadata_endpoint: $NB_EMULATOR_URL" \
        "metrics_file: $T/metrics-1.prom"
nb_spawn daemon "${clean_env[@]}" "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
daemon=$NB_PID
nb_wait_for_line "$NB_NOTIFY_LOG" 'READY=1' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
first_gen=$(meta generation)
# One notebook at a time, each waited for, until the keys have rotated three times
# since the start (the work is the clock: no sleep); the cap only ends a runaway loop.
i=0
while [ "$(meta distinct_aks)" -lt 4 ]; do
        i=$((i + 1))
        [ "$i" -le 2000 ] || nb_fail "2000 creates and the keys have not rotated three times"
        nb_write_manifest "$M/rot-$i.yaml" "rot-$i"
        nb_wait_for_journal . 1 MESSAGE_ID=$CREATE_ACCEPTED NOTEBOOK="rot-$i" _PID="$daemon" >/dev/null
done
nb_emulator_stats >"$T/stats-1.json"
nb_step "$i creates over generations $first_gen..$(jq .metadata.generation "$T/stats-1.json"), signed with $(jq .metadata.distinct_aks "$T/stats-1.json") AKs"
nb_assert_eq "$i" "$(jq '.by_route_status.create["201"] // 0' "$T/stats-1.json")" "creates accepted"
# A request signed just before its key's margin and slowed past the expiry (a loaded
# host) gets a 401, which the daemon retries with the new keys: tolerated, but only that
# 401, never a pause, and every create made.
n401=$(jq '[.by_route_status | .[] | .["401"] // 0] | add' "$T/stats-1.json")
nb_assert_eq "$(jq '.metadata.expired_rejected' "$T/stats-1.json")" "$n401" "401 answers, all for keys past their expiry"
[ "$n401" -le 2 ] || nb_fail "$n401 requests signed with expired keys: the renewal is late"
nb_assert_eq 0 "$(jq '[.protocol_violations // {} | .[]] | map(if type == "number" then . else 0 end) | add // 0' "$T/stats-1.json")" "protocol violations"
[ "$(jq '.metadata.signed_ok' "$T/stats-1.json")" -ge "$i" ] || nb_fail "fewer signed requests than creates"
# renewals are not a request per API call: one fetch per generation or two, not per create
keys=$(jq '.metadata.keys_served' "$T/stats-1.json")
gens=$(( $(jq .metadata.generation "$T/stats-1.json") - first_gen + 1 ))
nb_request_budget "$keys" 4 $((gens * 4 + 4)) "securitykey answers for $gens generations"
[ -z "$(nb_journal_json MESSAGE_ID=$AUTH_FAILED _PID="$daemon")" ] || nb_fail "an authentication failure was logged"

nb_step "no key, secret or token the service handed out in the journal, the state or the metrics"
nb_stop "$daemon"
nb_journal_json >"$T/journal-1.json"
# Everything the service gave the daemon (no request of the test's own: only what the
# daemon saw counts), every generation, not only the last.
curl -fsS "$NB_EMULATOR_URL/_emulator/metadata-served" >"$T/served-1.json"
nb_assert_eq true "$(jq .complete "$T/served-1.json")" "the emulator's list of served secrets is complete"
jq -r '.session_tokens[], (.keys[] | .access, .secret, .securitytoken)' "$T/served-1.json" >"$T/served-1.txt"
n_tokens=$(jq '.session_tokens | length' "$T/served-1.json")
n_keys=$(jq '.keys | length' "$T/served-1.json")
[ "$n_tokens" -ge 1 ] || nb_fail "no session token served"
[ "$n_keys" -ge 4 ] || nb_fail "only $n_keys key generations served (the AKs rotated three times)"
nb_assert_eq $((n_tokens + 3 * n_keys)) "$(grep -c . "$T/served-1.txt")" "served secrets listed, none empty"
[ -s "$T/metrics-1.prom" ] || nb_fail "no metrics file written"
if leak=$(grep -rlF -f "$T/served-1.txt" -- "$T/journal-1.json" "$T/s1" "$T/metrics-1.prom"); then
        nb_fail "a served secret reached $leak"
fi
nb_step "none of $n_tokens session tokens and $n_keys key generations found"

# ---- 2. the metadata service down at start ----
nb_step "once: the metadata service answers 503 three times, then works"
nb_stop "$NB_EMULATOR_PID"
nb_start_emulator --project-id "$PROJECT" --create-delay-ms 0 --metadata-period-ms 600000 --metadata-fail-next 3
M=$T/m2
mkdir -p "$M"
nb_write_manifest "$M/down.yaml" down-1
nb_write_config "$PROJECT" "$M" "$T/s2" "credentials: metadata" "metadata_endpoint: $NB_EMULATOR_URL"
rc=0
"${clean_env[@]}" timeout 900 "$NOTEBOOKD" -c "$T/config.yaml" --log-target=console once >"$T/once-2.out" 2>"$T/once-2.err" || rc=$?
nb_assert_eq 0 "$rc" "once's exit status (stderr: $(tail -n 3 "$T/once-2.err"))"
nb_emulator_stats >"$T/stats-2.json"
nb_assert_eq 3 "$(jq .metadata.failed_injected "$T/stats-2.json")" "metadata requests answered 503"
nb_assert_eq 1 "$(jq '.by_route_status.create["201"] // 0' "$T/stats-2.json")" "creates"
# the waits between the failed attempts: at least the backoff (1 s, then 2 s)
read -r g1 g2 < <(jq -r '.metadata.failed_at_ms | "\(.[1] - .[0]) \(.[2] - .[1])"' "$T/stats-2.json")
nb_step "failed fetches $g1 ms, then $g2 ms apart"
[ "$g1" -ge 950 ] || nb_fail "second attempt only $g1 ms after the first (backoff 1 s)"
[ "$g2" -ge 1950 ] || nb_fail "third attempt only $g2 ms after the second (backoff 2 s)"
nb_assert_file_match "$T/once-2.err" 'no keys from the ECS metadata service at http://127\.0\.0\.1:[0-9]+: session token: HTTP 503' "once's log"

# ---- 3. no agency ----
nb_step "once without an agency: exit 2 and the plain sentence"
nb_emulator_config 'metadata_no_agency=true'
nb_write_manifest "$M/agency.yaml" agency-1
rc=0
"${clean_env[@]}" timeout 900 "$NOTEBOOKD" -c "$T/config.yaml" --log-target=console once >"$T/once-3.out" 2>"$T/once-3.err" || rc=$?
nb_assert_eq 2 "$rc" "once's exit status"
nb_assert_file_match "$T/once-3.err" "^notebookd: authentication failed: .*$AGENCY" "once's error"

nb_step "run without an agency: paused with MESSAGE_ID, resumes once the agency exists"
nb_write_config "$PROJECT" "$M" "$T/s2" "credentials: metadata" "metadata_endpoint: $NB_EMULATOR_URL" \
        "auth_retry_interval: 10s"
nb_spawn daemon "${clean_env[@]}" "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
daemon=$NB_PID
entry=$(nb_wait_for_journal . 1 MESSAGE_ID=$AUTH_FAILED _PID="$daemon")
nb_assert_match "$AGENCY" "$(jq -r .MESSAGE <<<"$entry")" "the pause's journal entry"
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=Paused: authentication failed' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_emulator_config 'metadata_no_agency=false'
nb_wait_for_journal . 1 MESSAGE_ID=$CREATE_ACCEPTED NOTEBOOK=agency-1 _PID="$daemon" >/dev/null
nb_stop "$daemon"
nb_assert_eq 0 "$NB_STATUS" "the daemon's exit status"

nb_step "ok"
