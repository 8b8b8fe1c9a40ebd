#!/usr/bin/env bash
# `notebookd once` when the instance already exists remotely:
#   A. created behind notebookd's back before the run: the listing shows it, once adopts
#      it, sends no create for it (the emulator's per-name create count stays at the
#      test's own 1), records the existing instance id, exit 0;
#   B. ModelArts.6301: the instance appears between notebookd's listing and its create.
#      The emulator holds the listing's answer (--slow-ms on the list route only; the
#      listing itself was taken before the hold), the test creates the instance during
#      the hold, so notebookd's create meets 6301: it must list again and adopt, exit 0,
#      never an error and never a second instance.
# The test's own API calls use the emulator's X-Auth-Token (--token) next to the AK/SK
# that notebookd signs with, so they need no signer of their own.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=ONCEEXISTSAK00000001
SK=onceExistsSecretKey0123456789abcdefghiJK
TOKEN=once-exists-control-token
PROJECT=00112233445566778899aabbccddeeff

# ---- local helpers ----
: >"$T/config.yaml"

start_emulator() { # EXTRA ARGS...
        nb_start_emulator --ak "$AK" --sk "$SK" --token "$TOKEN" --project-id "$PROJECT" --log \
                --create-delay-ms 0 --seed 5 "$@"
}

status_json() { "$NOTEBOOKD" -c "$T/config.yaml" -s "$1" --json status; }
per_name() { # STATS_FILE NAME -> "requests created duplicates"
        jq -r --arg n "$2" '.creates.by_name[$n] // {requests: 0, created: 0, duplicates: 0} | "\(.requests) \(.created) \(.duplicates)"' "$1"
}
body_for() { # NAME: the create body notebookd would send for manifest() below
        jq -cn --arg n "$1" '{name: $n, profile_id: "Python3", description: "", flavor: "modelarts.vm.cpu.2u",
                spec: {storage: {type: "evs", location: {volume_size: 5}}}, workspace: {id: "0"}}'
}
# Create NAME directly at the emulator; prints the new instance id.
remote_create() { # NAME
        curl -fsS -X POST -H "X-Auth-Token: $TOKEN" -H "X-Project-Id: $PROJECT" -H 'Content-Type: application/json' \
                --data-binary "$(body_for "$1")" "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances" | jq -r .id
}
manifest() { # FILE NAME
        cat >"$1" <<-EOF
	name: $2
	profile_id: Python3
	flavor: modelarts.vm.cpu.2u
	spec:
	  storage:
	    type: evs
	    location:
	      volume_size: 5
	EOF
}
rec() { # STATUS_FILE NAME -> "result instance_id"
        jq -r --arg n "$2" '.instances[] | select(.name == $n) | "\(.result) \(.instance_id)"' "$1"
}

# ---- A. exists before the run ----
nb_step "A: an instance created behind notebookd's back is adopted, not created again"
start_emulator
MA=$T/manifests-a
mkdir -p "$MA"
manifest "$MA/adopt.yaml" ex-adopt
manifest "$MA/new.yaml" ex-new
id=$(remote_create ex-adopt)
nb_assert_match '^[0-9a-f-]{36}$' "$id" "id of the instance created by the test"

rc=0
nb_once "$MA" "$T/state-a" --wait --timeout 120 >"$T/once-a.stdout.log" 2>"$T/once-a.stderr.log" || rc=$?
nb_assert_eq 0 "$rc" "once with a pre-existing instance: exit status"
nb_emulator_stats >"$T/stats-a.json"
nb_assert_eq "1 1 0" "$(per_name "$T/stats-a.json" ex-adopt)" "ex-adopt: only the test's own create"
nb_assert_eq "1 1 0" "$(per_name "$T/stats-a.json" ex-new)" "ex-new: created once"
nb_assert_eq 2 "$(jq '.instances.live' "$T/stats-a.json")" "live instances"
status_json "$T/state-a" >"$T/status-a.json"
nb_assert_eq "adopted $id" "$(rec "$T/status-a.json" ex-adopt)" "ex-adopt record"
nb_assert_match '^accepted [0-9a-f-]{36}$' "$(rec "$T/status-a.json" ex-new)" "ex-new record"

# ---- B. ModelArts.6301 ----
nb_step "B: the instance appears between the listing and the create: 6301 is adopted"
start_emulator --fault-routes list --slow-ms 5000 --slow-rate 1
EMU_LOG=$T/emulator-2.log
[ -e "$EMU_LOG" ] || nb_fail "second emulator's log is not $EMU_LOG"
MB=$T/manifests-b
mkdir -p "$MB"
manifest "$MB/race.yaml" ex-race

(trap - EXIT; nb_once "$MB" "$T/state-b" --wait --timeout 120) >"$T/once-b.stdout.log" 2>"$T/once-b.stderr.log" &
once_pid=$!
# The emulator logs a request once handled, before holding its answer: from here on
# notebookd's listing is fixed, and it does not show ex-race.
nb_wait_for_line "$EMU_LOG" 'GET "?/v1/[^ ]*/demanager/instances\?[^ ]*de_type=Notebook[^ ]* (-> 200|ok)' "$NB_TIMEOUT" 1 "$once_pid" >/dev/null
id=$(remote_create ex-race)
nb_emulator_config "slow_ms=0" # later listings answer at once (the held one keeps its hold)
rc=0
wait "$once_pid" || rc=$?
nb_assert_eq 0 "$rc" "once meeting 6301: exit status"
nb_emulator_stats >"$T/stats-b.json"
nb_assert_eq 1 "$(jq '.faults.slow' "$T/stats-b.json")" "held listings (the set-up worked only if exactly the first was held)"
nb_assert_eq 1 "$(jq '.by_error_code["ModelArts.6301"] // 0' "$T/stats-b.json")" \
        "6301 answers (0: the create came before the test's, the race was not set up)"
nb_assert_eq "2 1 1" "$(per_name "$T/stats-b.json" ex-race)" "ex-race: the test's create, notebookd's (6301), one instance"
nb_assert_eq 1 "$(jq '.instances.live' "$T/stats-b.json")" "live instances"
status_json "$T/state-b" >"$T/status-b.json"
nb_assert_eq "adopted $id" "$(rec "$T/status-b.json" ex-race)" "ex-race record after 6301"
nb_assert_eq 0 "$(jq '.open_intents | length' "$T/status-b.json")" "open create intents after the adoption"
nb_assert_file_no_match "$T/once-b.stdout.log" '^(rejected|failed)' "once's report"

nb_step "ok"
