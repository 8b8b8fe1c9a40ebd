#!/usr/bin/env bash
# metrics_file: (README "Metrics") end to end: the daemon against the emulator, a known
# sequence of events, and the values in the Prometheus file after each, checked by
# `promtool check metrics` every time:
#   1. two tenants' creates (one of them first answered 429 and retried), a create rejected
#      with an injected ModelArts.6323, an invalid manifest, and an instance that already
#      existed (adopted): counters by result, code and tenant, instances by standing and
#      tenant, desired, invalid, API requests by call and status, 429s, the last
#      successful pass; the file is mode 0644, no temporary file is left beside it, and no
#      credential is in it;
#   2. a reload with a wrong SK: paused{reason="authentication"} 1, and a manifest added
#      meanwhile waits; fixed credential files end the pause (0 again), the manifest is
#      created and the last successful pass moves on;
#   3. a metrics_file: in a directory that does not exist: the failure is logged once,
#      with its MESSAGE_ID, and reconciling goes on; back to a good path, the file is
#      written again;
#   4. `notebookd once` writes the same file when it ends;
#   5. the alert rules shown in the README (units/notebookd-alerts.yml): `promtool check
#      rules`, and the README holds the same text.
# Every wait is for an event (a line in the file, the journal, STATUS=), never a sleep.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

command -v promtool >/dev/null || nb_fail "promtool missing: apt-get install prometheus (make deps)"

AK=METRICSTESTAK0000001
SK=metricsTestSecretKey0123456789abcdefghiJ
PROJECT=5d6e7f8091a2b3c4d5e6f708192a3b4c
M=$T/manifests
S=$T/state
P=$T/textfile           # stands in for /var/lib/prometheus/node-exporter
F=$P/notebookd.prom

nb_start_journald
nb_start_notify
# met-bad is refused for good; met-a2's first create (the first create sent, whichever it
# is: throttle_next below) is answered 429.
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 \
        --inject-error 'ModelArts.6323:met-bad'
mkdir -p "$M/team-a" "$M/team-b" "$P"
nb_write_manifest "$M/team-a/a1.yaml" met-a1
nb_write_manifest "$M/team-a/a2.yaml" met-a2
nb_write_manifest "$M/team-b/b1.yaml" met-b1
nb_write_manifest "$M/team-b/bad.yaml" met-bad
nb_write_manifest "$M/team-b/old.yaml" met-old
printf 'name: met-typo\nprofile_id: Python3\nflavour: modelarts.vm.cpu.2u\n' >"$M/team-b/typo.yaml"
# met-old exists before the daemon starts: it is adopted, not created
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/seed?name=met-old" >/dev/null
nb_emulator_config 'throttle_next=1&fault_routes=create'
nb_write_creds "$AK" "$SK"
config() { # METRICS_FILE
        nb_write_config "$PROJECT" "$M" "$S" "ak_file: $T/creds/ak" "sk_file: $T/creds/sk" \
                "auth_retry_interval: 10m" "metrics_file: $1" \
                'tenants:' '  - path: team-a/' '  - path: team-b/'
}
config "$F"

# The value of one series (exact labels as rendered), or "absent".
value() { # SERIES
        awk -v s="$1" 'index($0, s " ") == 1 { v = substr($0, length(s) + 2); found = 1 } END { print found ? v : "absent" }' "$F"
}
sum() { # METRIC_NAME_AND_LABEL_PREFIX: the sum of every series starting with it
        awk -v s="$1" 'index($0, s) == 1 { n += $NF } END { print n + 0 }' "$F"
}
wait_value() { # SERIES VALUE: the file has that line (event-driven: tail -F follows the renames)
        nb_wait_for_line "$F" "^$(printf '%s' "$1" | sed 's/[][\\.*^${}()|+?]/\\&/g') $2\$" "$NB_TIMEOUT" 1 "$daemon" >/dev/null
}
promcheck() {
        local out
        out=$(promtool check metrics <"$F" 2>&1) || nb_fail "promtool check metrics: $out"
}

t0=$(date +%s)
nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u CREDENTIALS_DIRECTORY \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
daemon=$NB_PID

nb_step "1. creates (one throttled first), a rejection, an adoption, an invalid manifest"
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=5 desired, 4 running, 0 creating, 0 waiting, 0 failed, 1 rejected, 0 retrying, 1 invalid manifest$' \
        "$NB_TIMEOUT" 1 "$daemon" >/dev/null
# STATUS= may be a write (at most 250 ms) ahead of the file: wait for each final value
# (they only grow to it, so once all were seen the file holds them all)
wait_value 'notebookd_instances{status="running",tenant="team-a"}' 2
wait_value 'notebookd_instances{status="running",tenant="team-b"}' 2
wait_value 'notebookd_instances{status="rejected",tenant="team-b"}' 1
wait_value 'notebookd_creates_total{result="accepted",tenant="team-a"}' 2
wait_value 'notebookd_creates_total{result="accepted",tenant="team-b"}' 1
wait_value 'notebookd_adoptions_total{tenant="team-b"}' 1
promcheck
for s in creating waiting failed retrying; do
        nb_assert_eq 0 "$(value "notebookd_instances{status=\"$s\",tenant=\"team-a\"}")" "$s in team-a"
done
nb_assert_eq 2 "$(value 'notebookd_desired_instances{tenant="team-a"}')" "desired in team-a"
nb_assert_eq 3 "$(value 'notebookd_desired_instances{tenant="team-b"}')" "desired in team-b"
nb_assert_eq 1 "$(value 'notebookd_invalid_manifests')" "invalid manifests"
nb_assert_eq 3 "$(sum 'notebookd_creates_total{result="accepted",')" "creates accepted"
nb_assert_eq 2 "$(value 'notebookd_creates_total{result="accepted",tenant="team-a"}')" "creates accepted in team-a"
nb_assert_eq 1 "$(value 'notebookd_creates_total{result="rejected",code="ModelArts.6323",tenant="team-b"}')" "create rejected"
nb_assert_eq 1 "$(value 'notebookd_rejections_total{call="create",code="ModelArts.6323",tenant="team-b"}')" "rejection"
nb_assert_eq 1 "$(sum 'notebookd_creates_total{result="throttled",code="APIG.0308",')" "create throttled"
nb_assert_eq 1 "$(value 'notebookd_api_throttled_total')" "429s"
nb_assert_eq 3 "$(value 'notebookd_api_requests_total{call="create",status="201"}')" "creates answered 201"
nb_assert_eq 1 "$(value 'notebookd_api_requests_total{call="create",status="400"}')" "creates answered 400"
nb_assert_eq 1 "$(value 'notebookd_api_requests_total{call="create",status="429"}')" "creates answered 429"
# the emulator counted the same list calls the file did (each page is one)
nb_assert_eq "$(nb_emulator_stats | jq '.by_route.list')" "$(sum 'notebookd_api_requests_total{call="list",')" "list requests"
for r in authentication account_frozen state_database listing; do
        nb_assert_eq 0 "$(value "notebookd_paused{reason=\"$r\"}")" "paused for $r"
done
last=$(value notebookd_last_successful_pass_timestamp_seconds)
awk -v l="$last" -v t="$t0" 'BEGIN { exit !(l >= t && l <= t + 3600) }' ||
        nb_fail "last successful pass $last is not after the start ($t0)"
nb_assert_match '^[0-9]+\.[0-9]{3}$' "$(value notebookd_pass_duration_seconds)" "pass duration"
nb_assert_eq 644 "$(stat -c %a "$F")" "the file's mode (node_exporter reads it as another user)"
nb_assert_eq "notebookd.prom" "$(ls -A "$P")" "files in the textfile directory (no temporary one left)"
grep -qF -e "$SK" -e "$AK" "$F" && nb_fail "a credential is in the metrics file"

nb_step "2. a reload with a wrong SK pauses sending: paused{reason=authentication} 1, then 0"
printf '%s' "not-the-secret-key-0123456789abcdefghij" >"$T/creds/sk"
kill -HUP "$daemon"
wait_value 'notebookd_paused{reason="authentication"}' 1
promcheck
nb_assert_eq 0 "$(value 'notebookd_paused{reason="listing"}')" "paused for listing"
nb_assert_eq 1 "$(value 'notebookd_api_requests_total{call="list",status="401"}')" "the refused listing"
# a manifest added while paused waits; the credential files are watched while paused:
# writing the right SK ends the pause, and the pass that follows creates it
nb_write_manifest "$M/team-a/a3.yaml" met-a3
printf '%s' "$SK" >"$T/creds/sk"
wait_value 'notebookd_creates_total{result="accepted",tenant="team-a"}' 3
nb_assert_eq 0 "$(value 'notebookd_paused{reason="authentication"}')" "paused for authentication"
after=$(value notebookd_last_successful_pass_timestamp_seconds)
awk -v a="$after" -v l="$last" 'BEGIN { exit !(a > l) }' || nb_fail "the last successful pass did not move on ($last -> $after)"
promcheck
grep -qF -e "$SK" -e "not-the-secret-key" "$F" && nb_fail "a credential is in the metrics file"

nb_step "3. an unwritable metrics_file: logged once, reconciling goes on"
config "$T/no-such-dir/notebookd.prom"
kill -HUP "$daemon"
nb_wait_for_journal . 1 MESSAGE_ID=bba148d44a844ff097495712ac90ee04 _PID="$daemon" >/dev/null
n_pass=$(nb_journal_json MESSAGE_ID=df2dbbc7bb794b6e97a4c17c814011dd _PID="$daemon" | wc -l)
nb_write_manifest "$M/team-a/a4.yaml" met-a4
nb_wait_for_journal . 1 MESSAGE_ID=22d9a72b4890455691dcdcd84bf08b8c NOTEBOOK=met-a4 _PID="$daemon" >/dev/null
nb_wait_for_journal . $((n_pass + 1)) MESSAGE_ID=df2dbbc7bb794b6e97a4c17c814011dd _PID="$daemon" >/dev/null
nb_assert_eq 1 "$(nb_journal_json MESSAGE_ID=bba148d44a844ff097495712ac90ee04 _PID="$daemon" | wc -l)" \
        "metrics write failures logged"
nb_assert_match 'no-such-dir/notebookd\.prom' "$(nb_journal_json MESSAGE_ID=bba148d44a844ff097495712ac90ee04 _PID="$daemon" | jq -r .METRICS_FILE)" "METRICS_FILE="
config "$F"
kill -HUP "$daemon"
wait_value 'notebookd_creates_total{result="accepted",tenant="team-a"}' 4
promcheck
nb_stop "$daemon"
nb_assert_eq 0 "$NB_STATUS" "daemon exit status"
nb_assert_eq "notebookd.prom" "$(ls -A "$P")" "files in the textfile directory"

nb_step "4. once writes the same file at its end"
F=$P/once.prom
config "$F"
rc=0
out=$(nb_once "$M" "$S" 2>&1) || rc=$?
nb_assert_eq 1 "$rc" "once's exit status (an invalid manifest, a rejected create): $out"
promcheck
nb_assert_eq 4 "$(value 'notebookd_instances{status="running",tenant="team-a"}')" "once: running in team-a"
nb_assert_eq 0 "$(sum 'notebookd_creates_total')" "once: creates (nothing to do)"
nb_assert_eq 1 "$(value 'notebookd_api_requests_total{call="list",status="200"}')" "once: its one listing"
nb_assert_match '^1[0-9]{9}\.[0-9]{3}$' "$(value notebookd_last_successful_pass_timestamp_seconds)" "once: last successful pass"

nb_step "5. the README's alert rules pass promtool, and the README shows them"
rules=$NB_SRCDIR/units/notebookd-alerts.yml
out=$(promtool check rules "$rules" 2>&1) || nb_fail "promtool check rules: $out"
nb_assert_match 'SUCCESS: 2 rules found' "$out" "promtool check rules"
readme_rules=$(sed -n '/^```yaml$/,/^```$/p' "$NB_SRCDIR/README.md" | grep -A1000 -m1 -x 'groups:' | sed '/^```$/,$d')
nb_assert_eq "$(grep -v '^#' "$rules")" "$readme_rules" "the rules in the README and in units/notebookd-alerts.yml"

nb_step "ok"
