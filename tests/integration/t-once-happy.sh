#!/usr/bin/env bash
# `notebookd once` against the emulator, the happy path: the example
# manifests in manifests/ plus a fixture tree covering every variant (obs, evs with the
# default size, GPU with annotations, multi-document files, envelope keys, a nested
# directory). Asserted on the emulator's own counters, not on exit codes alone:
#   1. once --wait: exit 0, exactly one create per name, every instance RUNNING remotely,
#      the bodies carried what the manifests say, `status --json` shows them all;
#   2. once again: exit 0, no create request at all;
#   3. state directory deleted, once again: exit 0, no create request, every name adopted
#      with the instance id the first run got.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=ONCEHAPPYAK000000001
SK=onceHappySecretKey0123456789abcdefghijKL
TOKEN=once-happy-control-token # the test's own curl calls; notebookd signs with AK/SK
PROJECT=0123456789abcdef0123456789abcdef
FIXTURES=$NB_LIB_DIR/fixtures/once-variants

nb_start_emulator --ak "$AK" --sk "$SK" --token "$TOKEN" --project-id "$PROJECT" \
        --create-delay-ms 300 --seed 7

# ---- local helpers ----
: >"$T/config.yaml" # an existing empty config: the host's /etc is never read

# run_once STATE_DIR [OPTION...]: sets rc; output in $T/once.{stdout,stderr}.log.
# `timeout` only turns a hang into a failure; it is not a speed assertion.
run_once() {
        local state=$1
        shift
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
                timeout 300 "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$state" -e "$NB_EMULATOR_URL" \
                -p "$PROJECT" --log-target=console "$@" once >"$T/once.stdout.log" 2>"$T/once.stderr.log" || rc=$?
}

status_json() { # STATE_DIR
        "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$1" --json status
}

stats() {
        curl -fsS "$NB_EMULATOR_URL/_emulator/stats"
}

# The emulator's listing, authenticated with the control token (not notebookd's code).
remote_list() {
        curl -fsS -H "X-Auth-Token: $TOKEN" -H "X-Project-Id: $PROJECT" \
                "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances?de_type=Notebook"
}

# The names the emulator saw create requests for, sorted, one a line.
created_names() {
        stats | jq -r '.creates.by_name | keys[]' | sort
}

# ---- the tree: examples + fixtures ----
M=$T/manifests
mkdir -p "$M/examples" "$M/fixtures"
n_examples=$(find "$NB_SRCDIR/manifests/" -type f \( -name '*.yaml' -o -name '*.yml' \) | wc -l)
[ "$n_examples" -gt 0 ] || nb_fail "manifests/ holds no example manifest (the repository must ship a few real examples covering obs, evs and annotations)"
cp -R "$NB_SRCDIR/manifests/." "$M/examples/"
cp -R "$FIXTURES/." "$M/fixtures/"

# The expected names come from notebookd's own offline check (and must be all valid).
"$NOTEBOOKD" --json check "$M" >"$T/check.json" || nb_fail "check of the test tree failed: $(cat "$T/check.json")"
jq -r '.instances_valid[].name' "$T/check.json" | sort >"$T/expected"
n=$(wc -l <"$T/expected")
nb_assert_eq 0 "$(jq '.errors' "$T/check.json")" "check errors in the test tree"
for f in fx-obs-py3 fx-evs-default fx_gpu_annotated fx-multi-1 fx-multi-2 fx-multi-3 fx-team-b-nested; do
        grep -qx -- "$f" "$T/expected" || nb_fail "fixture $f missing from check's instances"
done
[ "$n" -ge 8 ] || nb_fail "expected the 7 fixtures plus the examples, check found $n instances"
nb_step "$n desired instances ($n_examples example files)"

# ---- 1. first run ----
nb_step "once --wait creates every instance exactly once"
run_once "$T/state" --wait --timeout 120
nb_assert_eq 0 "$rc" "once --wait exit status"
stats >"$T/stats1.json"
created_names >"$T/created"
diff -u "$T/expected" "$T/created" >&2 || nb_fail "create requests were not for exactly the desired names"
bad=$(jq -r '.creates.by_name | to_entries[] | select(.value.requests != 1 or .value.created != 1 or .value.duplicates != 0) | "\(.key) \(.value)"' "$T/stats1.json")
[ -z "$bad" ] || nb_fail "not exactly one create per name: $bad"
nb_assert_eq "$n" "$(jq '.creates.requests' "$T/stats1.json")" "create requests in total"
nb_assert_eq "$n" "$(jq '.instances.live' "$T/stats1.json")" "live instances in the emulator"
nb_assert_eq "$n" "$(jq '.instances.by_status.RUNNING // 0' "$T/stats1.json")" "RUNNING instances in the emulator"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats1.json")" \
        "protocol violations ($(jq -c '.recent_violations' "$T/stats1.json"))"
nb_assert_eq 0 "$(jq '[.by_status | to_entries[] | select(.key | startswith("4") or startswith("5"))] | length' "$T/stats1.json")" \
        "error answers on a fault-free emulator ($(jq -c '.by_status' "$T/stats1.json"))"

# What arrived is what the manifests say (the emulator's view, fetched independently).
remote_list >"$T/remote.json"
nb_assert_eq "$n" "$(jq '.total_count' "$T/remote.json")" "remote total_count"
rq() { jq -r --arg n "$1" ".instances[] | select(.name == \$n) | $2" "$T/remote.json"; }
nb_assert_eq "obs fx-bucket/notebooks/obs-py3/ modelarts.vm.cpu.2u Python3" \
        "$(rq fx-obs-py3 '"\(.spec.storage.type) \(.spec.storage.location.path) \(.flavor) \(.profile.id)"')" "fx-obs-py3 body"
nb_assert_eq "evs 5" "$(rq fx-evs-default '"\(.spec.storage.type) \(.spec.storage.location.volume_size)"')" \
        "fx-evs-default: volume_size defaults to 5"
nb_assert_eq "vision alice 4711 100" \
        "$(rq fx_gpu_annotated '"\(.spec.annotations.team) \(.spec.annotations.owner) \(.spec.annotations["cost-center"]) \(.spec.storage.location.volume_size)"')" \
        "fx_gpu_annotated annotations"
nb_assert_eq "训练用 GPU 笔记本" "$(rq fx_gpu_annotated .description)" "non-ASCII description"
nb_assert_eq "obs fx-bucket/multi/two/ batch Python2-gpu" \
        "$(rq fx-multi-2 '"\(.spec.storage.type) \(.spec.storage.location.path) \(.spec.annotations.purpose) \(.profile.id)"')" \
        "fx-multi-2 (second document of a file)"
nb_assert_eq "4096 third of three" "$(rq fx-multi-3 '"\(.spec.storage.location.volume_size) \(.description)"')" \
        "fx-multi-3 (third document of a file)"

# notebookd's record of it: every name, with the emulator's id, RUNNING (--wait).
status_json "$T/state" >"$T/status1.json"
jq -r '.instances[].name' "$T/status1.json" | sort >"$T/recorded"
diff -u "$T/expected" "$T/recorded" >&2 || nb_fail "status --json does not show exactly the desired names"
jq -r '.instances[] | "\(.name) \(.id)"' "$T/remote.json" | sort >"$T/remote-ids"
jq -r '.instances[] | "\(.name) \(.instance_id)"' "$T/status1.json" | sort >"$T/recorded-ids"
diff -u "$T/remote-ids" "$T/recorded-ids" >&2 || nb_fail "recorded instance ids differ from the emulator's"
bad=$(jq -r '.instances[] | select(.status != "RUNNING" or .result != "accepted" or .error_code != null) | "\(.name) \(.status) \(.result) \(.error_code)"' "$T/status1.json")
[ -z "$bad" ] || nb_fail "after once --wait, not every record is accepted and RUNNING: $bad"
nb_assert_eq 0 "$(jq '.open_intents | length' "$T/status1.json")" "open create intents after a clean run"
for name in $(cat "$T/expected"); do
        nb_assert_file_match "$T/once.stdout.log" "(^|[^A-Za-z0-9_-])$name([^A-Za-z0-9_-]|$)" "once's report mentions $name"
done

# The secret never lands anywhere: output or state.
for f in "$T/once.stdout.log" "$T/once.stderr.log"; do
        nb_assert_file_no_match "$f" "$SK" "$f (secret key)"
done
! grep -rqaF -- "$SK" "$T/state" || nb_fail "the secret key is stored in the state directory"

# ---- 2. second run: nothing to do ----
nb_step "a second once creates nothing"
run_once "$T/state" --wait --timeout 120
nb_assert_eq 0 "$rc" "second once exit status"
stats >"$T/stats2.json"
nb_assert_eq "$n" "$(jq '.creates.requests' "$T/stats2.json")" "create requests after the second run (unchanged)"
nb_assert_eq "$n" "$(jq '.instances.live' "$T/stats2.json")" "live instances after the second run"
status_json "$T/state" >"$T/status2.json"
jq -r '.instances[] | "\(.name) \(.instance_id)"' "$T/status2.json" | sort >"$T/recorded-ids2"
diff -u "$T/recorded-ids" "$T/recorded-ids2" >&2 || nb_fail "the second run changed recorded instance ids"

# ---- 3. state lost: adopt, don't create ----
nb_step "state directory deleted: once adopts everything, creates nothing"
rm -rf "$T/state"
run_once "$T/state" --wait --timeout 120
nb_assert_eq 0 "$rc" "once without state: exit status"
stats >"$T/stats3.json"
nb_assert_eq "$n" "$(jq '.creates.requests' "$T/stats3.json")" "create requests after the run without state (unchanged)"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats3.json")" "duplicate creates (6301)"
nb_assert_eq "$n" "$(jq '.instances.live' "$T/stats3.json")" "live instances after the run without state"
status_json "$T/state" >"$T/status3.json"
jq -r '.instances[] | "\(.name) \(.instance_id)"' "$T/status3.json" | sort >"$T/adopted-ids"
diff -u "$T/remote-ids" "$T/adopted-ids" >&2 || nb_fail "adopted instance ids differ from the emulator's"
bad=$(jq -r '.instances[] | select(.result != "adopted" or .status != "RUNNING") | "\(.name) \(.result) \(.status)"' "$T/status3.json")
[ -z "$bad" ] || nb_fail "without state, not every record is adopted and RUNNING: $bad"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats3.json")" \
        "protocol violations over all runs ($(jq -c '.recent_violations' "$T/stats3.json"))"

nb_step "ok"
