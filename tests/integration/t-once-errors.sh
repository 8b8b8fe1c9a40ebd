#!/usr/bin/env bash
# `notebookd once` and permanent errors: every permanent class the
# emulator can produce is recorded with the API's code and message, one bad manifest
# never stops the good ones, a rejected create is not resent while its manifest is
# unchanged, and is sent again once the manifest is edited. An invalid manifest in the
# tree gives exit 1 while the valid ones are still created.
#   ModelArts.6328  a multi-card GPU flavor without the account's permission (no --grant-gpu)
#   ModelArts.6329  a sold-out flavor (--sold-out)
#   ModelArts.6302  the instance count limit (max_instances, set between runs so that
#                   which create hits it does not depend on request order)
#   ModelArts.6323  a flavor notebookd does not know: sent as written, the cloud refuses it
# And the host config's flavors: list: a manifest outside it is refused locally, never sent.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=ONCEERRORSAK00000001
SK=onceErrorsSecretKey0123456789abcdefghiJK
PROJECT=fedcba9876543210fedcba9876543210

nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 \
        --sold-out modelarts.vm.cpu.8u --seed 11

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
status_json() { "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$S" --json status; }
# requests/created of one name from an emulator stats snapshot ("0 0" when never seen)
per_name() { # STATS_FILE NAME
        jq -r --arg n "$2" '.creates.by_name[$n] // {requests: 0, created: 0} | "\(.requests) \(.created)"' "$1"
}
# one recorded instance as "result http_status error_code", and its error message
rec() { jq -r --arg n "$2" '.instances[] | select(.name == $n) | "\(.result) \(.http_status) \(.error_code)"' "$1"; }
rec_msg() { jq -r --arg n "$2" '.instances[] | select(.name == $n) | .error_msg // ""' "$1"; }

manifest() { # FILE NAME PROFILE FLAVOR [DESCRIPTION]
        cat >"$1" <<-EOF
	name: $2
	profile_id: $3
	description: ${5:-first version}
	flavor: $4
	spec:
	  storage:
	    type: evs
	EOF
}

mkdir -p "$M/good" "$M/bad"
for i in 1 2 3 4; do
        manifest "$M/good/good-$i.yaml" "good-$i" Python3 modelarts.vm.cpu.2u
done
manifest "$M/bad/gpu.yaml" err-gpu Python3-gpu modelarts.vm.gpu.2p100
manifest "$M/bad/soldout.yaml" err-soldout Python3 modelarts.vm.cpu.8u
# invalid: a misspelt key (caught by notebookd, never sent)
cat >"$M/bad/invalid.yaml" <<'EOF'
name: err-invalid
profile_id: Python3
flavour: modelarts.vm.cpu.2u
spec:
  storage:
    type: evs
EOF

# ---- 1. the first run ----
nb_step "first run: 6328 and 6329 recorded, an invalid manifest, the good ones created"
run_once --wait --timeout 120
nb_assert_eq 1 "$rc" "once with rejected and invalid manifests: exit status"
nb_emulator_stats >"$T/stats1.json"
for i in 1 2 3 4; do
        nb_assert_eq "1 1" "$(per_name "$T/stats1.json" "good-$i")" "good-$i: create requests, created"
done
nb_assert_eq "1 0" "$(per_name "$T/stats1.json" err-gpu)" "err-gpu: create requests, created"
nb_assert_eq "1 0" "$(per_name "$T/stats1.json" err-soldout)" "err-soldout: create requests, created"
nb_assert_eq "0 0" "$(per_name "$T/stats1.json" err-invalid)" "err-invalid must never be sent"
nb_assert_eq 1 "$(jq '.by_error_code["ModelArts.6328"] // 0' "$T/stats1.json")" "6328 answers"
nb_assert_eq 1 "$(jq '.by_error_code["ModelArts.6329"] // 0' "$T/stats1.json")" "6329 answers"
nb_assert_eq 4 "$(jq '.instances.live' "$T/stats1.json")" "live instances"
nb_assert_eq 4 "$(jq '.instances.by_status.RUNNING // 0' "$T/stats1.json")" "RUNNING instances"
# the invalid document is reported with its position and the key it does not know
nb_assert_file_match "$T/once.stderr.log" 'invalid\.yaml:3:1: error: .*flavour' "diagnostic for the invalid manifest"

status_json >"$T/status1.json"
nb_assert_eq "rejected 400 ModelArts.6328" "$(rec "$T/status1.json" err-gpu)" "err-gpu record"
nb_assert_eq "rejected 400 ModelArts.6329" "$(rec "$T/status1.json" err-soldout)" "err-soldout record"
nb_assert_match 'permission.*modelarts\.vm\.gpu\.2p100' "$(rec_msg "$T/status1.json" err-gpu)" "err-gpu: the API's message"
nb_assert_match 'modelarts\.vm\.cpu\.8u.*sold out' "$(rec_msg "$T/status1.json" err-soldout)" "err-soldout: the API's message"
for i in 1 2 3 4; do
        nb_assert_eq "accepted RUNNING" \
                "$(jq -r --arg n "good-$i" '.instances[] | select(.name == $n) | "\(.result) \(.status)"' "$T/status1.json")" \
                "good-$i record"
done
nb_assert_eq "" "$(jq -r '.instances[] | select(.name == "err-invalid") | .name' "$T/status1.json")" \
        "an invalid manifest has no record"

# ---- 2. instance limit ----
nb_step "the instance limit: 6302 for a new manifest, the count already reached"
nb_emulator_config "max_instances=4"
manifest "$M/bad/limit.yaml" err-limit Python3 modelarts.vm.cpu.2u
run_once --wait --timeout 120
nb_assert_eq 1 "$rc" "once over the instance limit: exit status"
nb_emulator_stats >"$T/stats2.json"
nb_assert_eq "1 0" "$(per_name "$T/stats2.json" err-limit)" "err-limit: create requests, created"
nb_assert_eq 1 "$(jq '.by_error_code["ModelArts.6302"] // 0' "$T/stats2.json")" "6302 answers"
status_json >"$T/status2.json"
nb_assert_eq "rejected 400 ModelArts.6302" "$(rec "$T/status2.json" err-limit)" "err-limit record"
nb_assert_match 'limit' "$(rec_msg "$T/status2.json" err-limit)" "err-limit: the API's message"
# and this run resent none of the earlier rejections (manifests unchanged)
nb_assert_eq "1 0" "$(per_name "$T/stats2.json" err-gpu)" "err-gpu not resent"
nb_assert_eq "1 0" "$(per_name "$T/stats2.json" err-soldout)" "err-soldout not resent"
for i in 1 2 3 4; do
        nb_assert_eq "1 1" "$(per_name "$T/stats2.json" "good-$i")" "good-$i not resent"
done

# ---- 3. unchanged manifests: nothing resent ----
nb_step "a run with unchanged manifests resends no rejected create"
nb_emulator_config "max_instances=0"   # even with the cause gone: only a manifest change retries
run_once --timeout 120
nb_assert_eq 1 "$rc" "once with unchanged rejected manifests: exit status"
nb_emulator_stats >"$T/stats3.json"
nb_assert_eq "$(jq '.creates.requests' "$T/stats2.json")" "$(jq '.creates.requests' "$T/stats3.json")" \
        "create requests on a run with nothing changed"
status_json >"$T/status3.json"
nb_assert_eq "rejected 400 ModelArts.6328" "$(rec "$T/status3.json" err-gpu)" "err-gpu record kept"
nb_assert_eq "rejected 400 ModelArts.6329" "$(rec "$T/status3.json" err-soldout)" "err-soldout record kept"
nb_assert_eq "rejected 400 ModelArts.6302" "$(rec "$T/status3.json" err-limit)" "err-limit record kept"

# ---- 4. an edited manifest is sent again ----
nb_step "the GPU manifest edited to a single-card flavor: sent again and created"
manifest "$M/bad/gpu.yaml" err-gpu Python3-gpu modelarts.vm.gpu.p100
run_once --wait --timeout 120
nb_assert_eq 1 "$rc" "exit status while 6329, 6302 and the invalid manifest remain"
nb_emulator_stats >"$T/stats4.json"
nb_assert_eq "2 1" "$(per_name "$T/stats4.json" err-gpu)" "err-gpu after the edit: create requests, created"
nb_assert_eq "1 0" "$(per_name "$T/stats4.json" err-soldout)" "err-soldout still not resent"
nb_assert_eq "1 0" "$(per_name "$T/stats4.json" err-limit)" "err-limit still not resent"
status_json >"$T/status4.json"
nb_assert_eq "accepted RUNNING null" \
        "$(jq -r '.instances[] | select(.name == "err-gpu") | "\(.result) \(.status) \(.error_code)"' "$T/status4.json")" \
        "err-gpu record after the edit"

# ---- 5. everything fixed ----
nb_step "every manifest fixed: exit 0, each name created once"
manifest "$M/bad/soldout.yaml" err-soldout Python3 modelarts.vm.cpu.2u
manifest "$M/bad/limit.yaml" err-limit Python3 modelarts.vm.cpu.2u "second version"
rm "$M/bad/invalid.yaml"
run_once --wait --timeout 120
nb_assert_eq 0 "$rc" "once with everything fixed: exit status"
nb_emulator_stats >"$T/stats5.json"
nb_assert_eq "2 1" "$(per_name "$T/stats5.json" err-soldout)" "err-soldout after the edit"
nb_assert_eq "2 1" "$(per_name "$T/stats5.json" err-limit)" "err-limit after the edit"
nb_assert_eq "2 1" "$(per_name "$T/stats5.json" err-gpu)" "err-gpu not sent a third time"
nb_assert_eq 7 "$(jq '.instances.live' "$T/stats5.json")" "live instances at the end"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats5.json")" "duplicate creates"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats5.json")" \
        "protocol violations ($(jq -c '.recent_violations' "$T/stats5.json"))"

# ---- 6. a flavor notebookd does not know: the cloud's to refuse ----
nb_step "an unknown flavor is sent, and the cloud's 6323 recorded with its message"
manifest "$M/bad/flavor.yaml" err-flavor Python3 c6.large
run_once --wait --timeout 120
nb_assert_eq 1 "$rc" "once with a flavor the cloud refuses: exit status"
nb_emulator_stats >"$T/stats6.json"
nb_assert_eq "1 0" "$(per_name "$T/stats6.json" err-flavor)" "err-flavor: create requests, created"
nb_assert_eq 1 "$(jq '.by_error_code["ModelArts.6323"] // 0' "$T/stats6.json")" "6323 answers"
status_json >"$T/status6.json"
nb_assert_eq "rejected 400 ModelArts.6323" "$(rec "$T/status6.json" err-flavor)" "err-flavor record"
nb_assert_match 'not supported' "$(rec_msg "$T/status6.json" err-flavor)" "err-flavor: the API's message"
if grep -Eq 'flavor\.yaml:[0-9]+:[0-9]+: error' "$T/once.stderr.log"; then
        nb_fail "a local error for a flavor notebookd does not know: $(cat "$T/once.stderr.log")"
fi

# ---- 7. the host's own rules: profiles:/flavors: in the config ----
nb_step "a flavor outside the config's flavors: is refused locally, at its position, and never sent"
cat >"$T/config.yaml" <<'EOF'
profiles: ["Python3", "*-gpu"]
flavors:
  - "modelarts.vm.cpu.*"
  - modelarts.vm.gpu.p100
  - c6.large
EOF
manifest "$M/bad/policy.yaml" err-policy Python3-gpu modelarts.vm.gpu.v100
run_once --wait --timeout 120
nb_assert_eq 1 "$rc" "once with a manifest the config forbids: exit status"
nb_emulator_stats >"$T/stats7.json"
nb_assert_eq "0 0" "$(per_name "$T/stats7.json" err-policy)" "err-policy must never be sent"
nb_assert_eq "$(jq '.creates.requests' "$T/stats6.json")" "$(jq '.creates.requests' "$T/stats7.json")" \
        "create requests on a run where only a forbidden manifest was added"
nb_assert_file_match "$T/once.stderr.log" \
        "policy\\.yaml:4:9: error: flavor 'modelarts\\.vm\\.gpu\\.v100' is not allowed by 'flavors' in .*config\\.yaml" \
        "diagnostic for the forbidden flavor"
nb_assert_eq 7 "$(jq '.instances.live' "$T/stats7.json")" "live instances unchanged"
# check -c CONFIG says the same (what CI runs); check without -c ignores the host's rules
rc=0
"$NOTEBOOKD" -c "$T/config.yaml" check "$M" 2>"$T/check.log" || rc=$?
nb_assert_eq 1 "$rc" "check -c CONFIG: exit status"
nb_assert_file_match "$T/check.log" \
        "policy\\.yaml:4:9: error: flavor 'modelarts\\.vm\\.gpu\\.v100' is not allowed by 'flavors'" \
        "check -c CONFIG: diagnostic"
rc=0
"$NOTEBOOKD" check "$M" 2>"$T/check.log" || rc=$?
nb_assert_eq 0 "$rc" "check without -c: exit status ($(cat "$T/check.log"))"

nb_step "ok"
