#!/usr/bin/env bash
# Fault: the API unreachable for 30 s, then back on the same port.
# Three manifests converge; the emulator stops (connections refused) and three more
# manifests arrive. Their creates fail with no HTTP answer, so the next pass is a full one
# (one listing probes the API for every name; part 6's incremental passes would have
# each name's retry probe it). The daemon keeps running, says the listing fails and why (journal),
# and STATUS= says it is waiting and when it tries next; its listings back off, so the
# connection attempts during the outage are few (counted from its journal). The emulator
# comes back on the same port with the cloud's state (the three instances, same ids,
# restored through /_emulator/seed while the daemon is frozen, so that no listing sees
# an empty cloud in between), and the daemon converges: the three new manifests created
# once each, the old three left alone. The requests the emulator saw are held against
# the minimum.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=FAULTUNREACHAK000001
SK=faultUnreachSecretKey0123456789abcdefghi
PROJECT=2e3f405162738495a6b7c8d9e0f1a2b3
M=$T/manifests
S=$T/state
OUTAGE_S=30

emulator_args=(--ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0)
nb_start_emulator "${emulator_args[@]}"
emulator=$NB_EMULATOR_PID
port=${NB_EMULATOR_URL##*:}
nb_start_journald
nb_start_notify
mkdir -p "$M"
for i in 1 2 3; do nb_write_manifest "$M/old-$i.yaml" reach-old-$i; done
nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$M" "$S" "ak_file: $T/creds/ak" "sk_file: $T/creds/sk"

nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u CREDENTIALS_DIRECTORY \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
daemon=$NB_PID
nb_at_exit "kill -CONT $daemon 2>/dev/null"

nb_step "the API up: three manifests converge"
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=3 desired, 3 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
before=$(nb_api_requests)
# the cloud's state, to restore after the outage: NAME ID per instance
nb_journal_json MESSAGE_ID=22d9a72b4890455691dcdcd84bf08b8c _PID="$daemon" |
        jq -r '"\(.NOTEBOOK) \(.INSTANCE_ID)"' >"$T/instances"
nb_assert_eq 3 "$(wc -l <"$T/instances")" "instances created before the outage"

nb_step "the API unreachable for ${OUTAGE_S}s, three more manifests"
nb_stop "$emulator"
for i in 1 2 3; do nb_write_manifest "$M/new-$i.yaml" reach-new-$i; done
fails_re='"MESSAGE":"Listing workspace 0 failed: '
line=$(nb_wait_for_journal "$fails_re" 1 _PID="$daemon" | jq -r .MESSAGE)
echo "journal: $line" >&2
nb_assert_match "Couldn't connect|onnection refused" "$line" "the listing failure names the cause"
line=$(nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=Paused: listing failed' "$NB_TIMEOUT" 1 "$daemon")
echo "$line" >&2
nb_assert_match 'next try in [0-9]+s; 6 desired, 3 running' "$line" "STATUS= while unreachable"
sleep "$OUTAGE_S"   # the outage itself: a deliberate duration, not a synchronisation
kill -0 "$daemon" || nb_fail "the daemon exited during the outage"
attempts=$(nb_journal_json _PID="$daemon" | grep -c -- "$fails_re" || true)
echo "listing attempts during the ${OUTAGE_S}s outage: $attempts" >&2
# Backoff from 1 s doubling, half-jittered (at least 0.5, 1, 2, 4, 8, 16 s): at most 7
# in 30 s; a retry loop would make hundreds.
[ "$attempts" -ge 2 ] || nb_fail "only $attempts listing attempts during the outage: it did not retry"
[ "$attempts" -le 8 ] || nb_fail "$attempts listing attempts in ${OUTAGE_S}s: no backoff"

nb_step "the API back on port $port with its state: converges"
kill -STOP "$daemon"
nb_start_emulator "${emulator_args[@]}" --listen "127.0.0.1:$port"
while read -r name id; do
        curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/seed?name=$name&id=$id" >/dev/null
done <"$T/instances"
kill -CONT "$daemon"
nb_wait_journal_names 3 . MESSAGE_ID=22d9a72b4890455691dcdcd84bf08b8c _PID="$daemon"
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=6 desired, 6 running' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_emulator_stats >"$T/stats-end.json"
nb_assert_eq 3 "$(jq '.creates.requests' "$T/stats-end.json")" "creates after the outage"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats-end.json")" "duplicate creates"
nb_assert_eq 6 "$(jq '.instances.live' "$T/stats-end.json")" "live instances"
after=$(nb_api_requests)

# The minimum: before, a listing and three creates; after, a listing and three creates.
nb_request_budget "$before" 4 4 "API requests before the outage"
nb_request_budget "$after" 4 5 "API requests after the outage"
nb_request_budget "$((before + after + attempts))" 8 17 "API requests and connection attempts"
nb_stop "$daemon"
nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM"
nb_step "ok"
