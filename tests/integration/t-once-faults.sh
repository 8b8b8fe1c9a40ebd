#!/usr/bin/env bash
# `notebookd once` converges under injected faults with zero duplicates (20% 5xx,
# 10% 429, 5% connections dropped after the instance was created):
#   1. 36 generated manifests, the fault mix on every API route: once --wait exits 0,
#      every name has exactly one live instance, no create ever met 6301, the records
#      match the emulator's instances;
#   2. every create dropped after creating (rate 1.0) for a handful of new names: the
#      client never learns the answer, must resolve each open intent by listing and
#      adopt, and must not send a second create for any of them;
#   3. 300 names more, so every listing is 4 pages fetched together, under a milder mix:
#      one instance per name, records equal to the emulator's instances.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=ONCEFAULTSAK00000001
SK=onceFaultsSecretKey0123456789abcdefghiJK
TOKEN=once-faults-control-token
PROJECT=5f5e5d5c5b5a59585756555453525150
N=36

nb_start_emulator --ak "$AK" --sk "$SK" --token "$TOKEN" --project-id "$PROJECT" --seed 20260101 \
        --create-delay-ms 200 --retry-after 1 --retry-after-header \
        --fail-5xx-rate 0.2 --throttle-rate 0.1 --drop-after-create-rate 0.05

# ---- local helpers ----
: >"$T/config.yaml"
M=$T/manifests
S=$T/state
run_once() { # [OPTION...]: sets rc
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
                timeout 300 "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$S" -e "$NB_EMULATOR_URL" \
                -p "$PROJECT" --log-target=console "$@" once >"$T/once.stdout.log" 2>"$T/once.stderr.log" || rc=$?
}
status_json() { "$NOTEBOOKD" -c "$T/config.yaml" -s "$S" --json status; }
# The emulator's instances as "name id status", sorted (fetched with the control token,
# with faults off: the test's own calls must not be throttled).
remote_ids() {
        curl -fsS -H "X-Auth-Token: $TOKEN" -H "X-Project-Id: $PROJECT" \
                "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances?de_type=Notebook" |
                jq -r '.instances[] | "\(.name) \(.id) \(.status)"' | sort
}
recorded_ids() { status_json | jq -r '.instances[] | "\(.name) \(.instance_id) \(.status)"' | sort; }

# Some variety: obs and evs, CPU and GPU, one file with three documents.
gen_manifest() { # FILE NAME I
        local i=$3
        if [ $((i % 3)) = 0 ]; then
                printf 'name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: obs\n    location:\n      path: faults-bucket/%s/\n' "$2" "$2"
        elif [ $((i % 3)) = 1 ]; then
                printf 'name: %s\nprofile_id: Python3-gpu\nflavor: modelarts.vm.gpu.p100\nspec:\n  storage:\n    type: evs\n    location:\n      volume_size: %d\n' "$2" $((5 + i))
        else
                printf 'name: %s\nprofile_id: Python2\ndescription: generated %d\nflavor: modelarts.vm.cpu.8u\nspec:\n  storage:\n    type: evs\n  annotations:\n    index: "%d"\n' "$2" "$i" "$i"
        fi >"$1"
}

mkdir -p "$M/gen" "$M/multi"
for i in $(seq 1 $((N - 3))); do
        gen_manifest "$M/gen/nb-$i.yaml" "$(printf 'fault-%02d' "$i")" "$i"
done
for i in $((N - 2)) $((N - 1)) $N; do
        gen_manifest "$T/doc" "$(printf 'fault-%02d' "$i")" "$i"
        { [ "$i" = $((N - 2)) ] || echo '---'; cat "$T/doc"; } >>"$M/multi/three.yaml"
done
"$NOTEBOOKD" --json check "$M" >"$T/check.json" || nb_fail "generated manifests invalid: $(jq -c .diagnostics "$T/check.json")"
nb_assert_eq "$N" "$(jq '.instances_valid | length' "$T/check.json")" "generated instances"

# ---- 1. the fault mix ----
nb_step "1: $N manifests, 20% 5xx, 10% 429, 5% dropped after create"
run_once --wait --timeout 120
nb_assert_eq 0 "$rc" "once under the fault mix: exit status"
nb_emulator_stats >"$T/stats1.json"
nb_emulator_config "fail_5xx_rate=0&throttle_rate=0&drop_after_create_rate=0" # quiet, for the test's own calls
bad=$(jq -r '.creates.by_name | to_entries[] | select(.value.created != 1 or .value.duplicates != 0) | "\(.key) \(.value)"' "$T/stats1.json")
[ -z "$bad" ] || nb_fail "names not created exactly once: $bad"
nb_assert_eq "$N" "$(jq '.creates.by_name | length' "$T/stats1.json")" "names the emulator saw creates for"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats1.json")" "creates answered 6301 (a second create for an existing name)"
nb_assert_eq "$N" "$(jq '.instances.live' "$T/stats1.json")" "live instances"
nb_assert_eq "$N" "$(jq '.instances.by_status.RUNNING // 0' "$T/stats1.json")" "RUNNING instances"
# the faults did happen (else this test proves nothing)
[ "$(jq '.faults.internal_500' "$T/stats1.json")" -gt 0 ] || nb_fail "no 5xx was injected"
[ "$(jq '.faults.throttled_429' "$T/stats1.json")" -gt 0 ] || nb_fail "no 429 was injected"
nb_step "faults injected: $(jq -c .faults "$T/stats1.json"), create requests $(jq .by_route.create "$T/stats1.json")"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats1.json")" \
        "protocol violations ($(jq -c '.recent_violations' "$T/stats1.json"))"
remote_ids >"$T/remote1"
recorded_ids >"$T/recorded1"
diff -u "$T/remote1" "$T/recorded1" >&2 || nb_fail "records differ from the emulator's instances"
nb_assert_eq 0 "$(status_json | jq '.open_intents | length')" "open create intents"

# ---- 2. every create dropped after creating ----
nb_step "2: five new names, every create dropped after the instance was made"
nb_emulator_config "drop_after_create_rate=1"
mkdir -p "$M/dropped"
for i in 1 2 3 4 5; do
        gen_manifest "$M/dropped/d$i.yaml" "dropped-$i" "$i"
done
run_once --wait --timeout 120
nb_assert_eq 0 "$rc" "once with every create dropped: exit status"
nb_emulator_stats >"$T/stats2.json"
nb_emulator_config "drop_after_create_rate=0"
nb_assert_eq 5 $(($(jq '.dropped.create' "$T/stats2.json") - $(jq '.dropped.create' "$T/stats1.json"))) \
        "creates dropped in run 2"
for i in 1 2 3 4 5; do
        nb_assert_eq "1 1 0" \
                "$(jq -r --arg n "dropped-$i" '.creates.by_name[$n] // {} | "\(.requests) \(.created) \(.duplicates)"' "$T/stats2.json")" \
                "dropped-$i: create requests, created, duplicates (a second create would be a duplicate)"
done
nb_assert_eq $((N + 5)) "$(jq '.instances.live' "$T/stats2.json")" "live instances"
nb_assert_eq "$(jq '.creates.requests' "$T/stats1.json")" "$(jq '.creates.requests - 5' "$T/stats2.json")" \
        "create requests in run 2 (the five, nothing else)"
remote_ids >"$T/remote2"
recorded_ids >"$T/recorded2"
diff -u "$T/remote2" "$T/recorded2" >&2 || nb_fail "records differ from the emulator's instances"
status_json >"$T/status2.json"
bad=$(jq -r '.instances[] | select(.name | startswith("dropped-")) | select(.result != "adopted") | "\(.name) \(.result)"' "$T/status2.json")
[ -z "$bad" ] || nb_fail "a dropped create was not resolved by adoption: $bad"
nb_assert_eq 0 "$(jq '.open_intents | length' "$T/status2.json")" "open create intents after resolution"

# ---- 3. listings of several pages, fetched together, under faults ----
nb_step "3: 300 more names: listings of 4 pages (fetched together), 5% 5xx, 5% 429, 5% dropped"
nb_emulator_config "fail_5xx_rate=0.05&throttle_rate=0.05&drop_after_create_rate=0.05"
mkdir -p "$M/paged"
for i in $(seq 1 300); do
        gen_manifest "$M/paged/p$i.yaml" "$(printf 'paged-%03d' "$i")" "$i"
done
run_once --wait --timeout 240
nb_assert_eq 0 "$rc" "once with multi-page listings under faults: exit status"
nb_emulator_stats >"$T/stats3.json"
nb_emulator_config "fail_5xx_rate=0&throttle_rate=0&drop_after_create_rate=0"
bad=$(jq -r '.creates.by_name | to_entries[] | select(.value.created != 1 or .value.duplicates != 0) | "\(.key) \(.value)"' "$T/stats3.json")
[ -z "$bad" ] || nb_fail "names not created exactly once: $bad"
nb_assert_eq $((N + 5 + 300)) "$(jq '.instances.live' "$T/stats3.json")" "live instances"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats3.json")" "creates answered 6301"
lists=$(($(jq '.by_route.list' "$T/stats3.json") - $(jq '.by_route.list' "$T/stats2.json")))
[ "$lists" -ge 4 ] || nb_fail "list requests in run 3: $lists, want at least one whole listing of 4 pages"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats3.json")" "protocol violations"
remote_ids >"$T/remote3"
recorded_ids >"$T/recorded3"
diff -u "$T/remote3" "$T/recorded3" >&2 || nb_fail "records differ from the emulator's instances"

nb_step "ok"
