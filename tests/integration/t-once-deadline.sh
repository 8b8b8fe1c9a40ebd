#!/usr/bin/env bash
# `notebookd once --timeout` when every create fails transiently (exit 3 means that
# transient failures remained at the deadline): the emulator answers every create
# 500 ModelArts.0010 (the listing works, so the creates are really attempted). once
# --timeout 3 ends with exit 3, `status --json` shows each name retrying with the last
# answer, no instance exists, and the retries backed off instead of hammering. Then the
# fault is lifted: the next run converges with one instance per name.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=ONCEDEADLINEAK000001
SK=onceDeadlineSecretKey0123456789abcdefgHI
PROJECT=1234567890abcdef1234567890abcdef
NAMES="late-1 late-2 late-3"

nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 \
        --fault-routes create --fail-5xx-rate 1.0

# ---- local helpers ----
: >"$T/config.yaml"
M=$T/manifests
S=$T/state
mkdir -p "$M"
for n in $NAMES; do
        printf 'name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' "$n" >"$M/$n.yaml"
done
run_once() { # [OPTION...]: sets rc
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
                timeout 120 "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$S" -e "$NB_EMULATOR_URL" \
                -p "$PROJECT" --log-target=console "$@" once >"$T/once.stdout.log" 2>"$T/once.stderr.log" || rc=$?
}
status_json() { "$NOTEBOOKD" -c "$T/config.yaml" -s "$S" --json status; }

# ---- every create fails until the deadline ----
nb_step "every create answered 500: once --timeout 3 exits 3"
run_once --wait --timeout 3
nb_assert_eq 3 "$rc" "once with only transient failures: exit status"
nb_emulator_stats >"$T/stats1.json"
nb_assert_eq 0 "$(jq '.instances.live' "$T/stats1.json")" "live instances"
nb_assert_eq 0 "$(jq '.creates.created' "$T/stats1.json")" "instances created"
creates=$(jq '.by_route.create' "$T/stats1.json")
n_names=$(echo $NAMES | wc -w)
[ "$creates" -ge "$n_names" ] || nb_fail "only $creates create requests for $n_names names: were they attempted at all?"
# Backoff, not a tight loop: in 3 s a client retrying without backoff sends hundreds.
[ "$creates" -le $((n_names * 8)) ] || nb_fail "$creates create requests for $n_names names in 3 s: no backoff"
nb_assert_eq "$creates" "$(jq '.by_route_status.create["500"] // 0' "$T/stats1.json")" "creates answered 500"

status_json >"$T/status1.json"
for n in $NAMES; do
        # "retrying", or "unknown" when the client treats a 5xx as a create that may have
        # happened (it then lists before resending): both say "not done, will retry".
        line=$(jq -r --arg n "$n" '.instances[] | select(.name == $n) | "\(.result) \(.http_status) \(.error_code) \(.instance_id)"' "$T/status1.json")
        nb_assert_match '^(retrying|unknown) 500 ModelArts\.0010 null$' "$line" "$n record at the deadline"
        [ "$(jq --arg n "$n" '.instances[] | select(.name == $n) | .attempts' "$T/status1.json")" -ge 1 ] ||
                nb_fail "$n: no attempt recorded"
        [ "$(jq --arg n "$n" '.instances[] | select(.name == $n) | .next_attempt_at_ms' "$T/status1.json")" -gt 0 ] ||
                nb_fail "$n: no retry scheduled"
        nb_assert_file_match "$T/once.stdout.log" "$n" "once's report mentions $n"
done
bad=$(jq -r '.open_intents[] | select(.name | startswith("late-") | not) | .name' "$T/status1.json")
[ -z "$bad" ] || nb_fail "open intents for names that are not desired: $bad"

# ---- the fault lifted: the next run converges ----
nb_step "the fault lifted: the next run creates each name once"
nb_emulator_config "fail_5xx_rate=0"
run_once --wait --timeout 120
nb_assert_eq 0 "$rc" "once after the fault was lifted: exit status"
nb_emulator_stats >"$T/stats2.json"
for n in $NAMES; do
        nb_assert_eq "1 0" "$(jq -r --arg n "$n" '.creates.by_name[$n] | "\(.created) \(.duplicates)"' "$T/stats2.json")" \
                "$n: created, duplicates"
done
nb_assert_eq "$n_names" "$(jq '.instances.live' "$T/stats2.json")" "live instances"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats2.json")" \
        "protocol violations ($(jq -c '.recent_violations' "$T/stats2.json"))"
nb_assert_eq 0 "$(status_json | jq '.open_intents | length')" "open create intents after convergence"

nb_step "ok"
