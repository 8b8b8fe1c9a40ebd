#!/usr/bin/env bash
# Regression tests for engine and manager bugs found in review (fixed in eec070e,
# 02e36eb, 1bc2800). Each case failed on the code before those fixes:
#   1. An instance deleted behind our back whose re-create is rejected permanently
#      (6329): the record must drop the dead instance id and say "rejected" (it used to
#      keep the old id and RUNNING), and the rejected create is not resent while the
#      manifest is unchanged.
#   2. SIGTERM stops starting new work: with concurrency 1 and every request held 1.5 s,
#      the creates still queued when the signal arrives are dropped, not sent one by one
#      during the stop grace; a later `once --wait` creates each name exactly once.
#   3. A poll (GET of a CREATING instance) on the wire at SIGTERM does not hold the
#      daemon: once its answer is in, no new poll is scheduled (the old engine scheduled
#      one, up to 30 s away, and waited for it) and the daemon exits 0 without reaching
#      the 10 s stop grace ("did not finish within").
#   4. A 6301 for a name the listing never shows must back off, not loop: not covered.
#      The emulator cannot make one: its listing shows every instance (DELETED ones
#      included) and a DELETED instance frees its name, so 6301 always comes with a
#      listed live instance, which the next pass adopts.
# Each case has its own emulator, manifests and state directory; the daemon logs to
# the console (no journald needed).
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=REGRESSENGINEAK00001
SK=regressEngineSecretKey0123456789abcdeFG
PROJECT=0f1e2d3c4b5a69788796a5b4c3d2e1f0

emu_post() { curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/$1" >/dev/null; }


# A fresh directory for one case: sets D, M (manifests), S (state), writes $D/config.yaml
# for the current emulator with any EXTRA config lines.
case_dir() { # NAME [EXTRA_LINE...]
        D=$T/$1
        M=$D/manifests
        S=$D/state
        mkdir -p "$M"
        shift
        {
                printf 'endpoint: %s\nproject_id: %s\nmanifests: %s\nstate_dir: %s\nresync_interval: 10m\n' \
                        "$NB_EMULATOR_URL" "$PROJECT" "$M" "$S"
                local l
                for l in "$@"; do
                        printf '%s\n' "$l"
                done
        } >"$D/config.yaml"
}

# Credentials from the environment, no other source inherited.
nb_env() {
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" "$@"
}

run_once() { # [OPTION...]: sets rc; output in $D/once.*.log
        rc=0
        nb_env timeout 300 "$NOTEBOOKD" -c "$D/config.yaml" --log-target=console "$@" once \
                >"$D/once.stdout.log" 2>"$D/once.stderr.log" || rc=$?
        nb_assert_file_no_match "$D/once.stderr.log" 'Sanitizer|runtime error|LeakSanitizer' "once output (sanitizers)"
}

start_daemon() { # LOG_NAME: sets DAEMON_PID; output in $T/LOG_NAME.log
        nb_spawn "$1" env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" "$NOTEBOOKD" -c "$D/config.yaml" --log-target=console run
        DAEMON_PID=$NB_PID
}

status_json() { "$NOTEBOOKD" -c "$D/config.yaml" --json status; }
# one record as "result|instance_id|status|error_code" ("" for absent fields)
rec() { # STATUS_FILE NAME
        jq -r --arg n "$2" '.instances[] | select(.name == $n) |
                "\(.result // "")|\(.instance_id // "")|\(.status // "")|\(.error_code // "")"' "$1"
}
# create requests and instances made for one name: "requests created"
per_name() { # STATS_FILE NAME
        jq -r --arg n "$2" '.creates.by_name[$n] // {requests: 0, created: 0} | "\(.requests) \(.created)"' "$1"
}

# ---- 1. deleted behind our back, the re-create rejected permanently ----
case_1() {
        local result old_id id status code
        nb_step "1. deleted behind our back, re-create answered 6329: no dead id kept, not resent"
        nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 --seed 131
        case_dir c1
        nb_write_manifest "$M/nb-a.yaml" nb-a
        run_once --wait --timeout 120
        nb_assert_eq 0 "$rc" "first once --wait: exit status"
        status_json >"$D/status1.json"
        IFS='|' read -r result old_id status code <<<"$(rec "$D/status1.json" nb-a)"
        nb_assert_eq "accepted RUNNING" "$result $status" "nb-a record after the first run"
        nb_assert_match '^[0-9a-f-]{36}$' "$old_id" "nb-a instance id after the first run"

        emu_post "delete?name=nb-a"
        emu_post "config?sold_out=modelarts.vm.cpu.2u"
        run_once
        nb_emulator_stats >"$D/stats2.json"
        nb_assert_eq "2 1" "$(per_name "$D/stats2.json" nb-a)" "nb-a create requests, instances made (re-create sent once)"
        nb_assert_eq 1 "$(jq '.by_error_code["ModelArts.6329"] // 0' "$D/stats2.json")" "6329 answers"
        status_json >"$D/status2.json"
        IFS='|' read -r result id status code <<<"$(rec "$D/status2.json" nb-a)"
        nb_assert_eq "" "$id" "nb-a instance id after the rejected re-create (the dead one was $old_id)"
        nb_assert_ne RUNNING "$status" "nb-a status after the rejected re-create"
        nb_assert_eq "rejected ModelArts.6329" "$result $code" "nb-a result and error code after the rejected re-create"
        nb_assert_eq 1 "$rc" "once after the delete, the flavor sold out: exit status"

        run_once
        nb_assert_eq 1 "$rc" "once again, manifest unchanged: exit status"
        nb_emulator_stats >"$D/stats3.json"
        nb_assert_eq "2 1" "$(per_name "$D/stats3.json" nb-a)" "nb-a create requests after a run with the manifest unchanged"
        status_json >"$D/status3.json"
        nb_assert_eq "rejected||ModelArts.6329" "$(rec "$D/status3.json" nb-a | cut -d'|' -f1,2,4)" "nb-a record kept"
        nb_assert_eq 0 "$(jq '.protocol_violations.total' "$D/stats3.json")" \
                "protocol violations ($(jq -c '.recent_violations' "$D/stats3.json"))"
}

# ---- 2. SIGTERM drops the queued creates ----
case_2() {
        local N_Q=20 by_route requests bad i
        nb_step "2. SIGTERM with 1 create on the wire and $((N_Q - 1)) queued: the queued ones are dropped"
        nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 100 --latency-ms 1500 --seed 132
        case_dir c2 "concurrency: 1"
        for i in $(seq 1 "$N_Q"); do
                nb_write_manifest "$M/q-$i.yaml" "q-$i"
        done
        start_daemon daemon-c2
        # "Creating notebook" is logged as each create is handed to the API client; with
        # concurrency 1 one goes on the wire, the others wait in its queue (each request is
        # held 1.5 s by the emulator, so the first is still unanswered when the signal lands).
        nb_wait_for_line "$T/daemon-c2.log" 'Creating notebook q-' "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null
        nb_stop "$DAEMON_PID" TERM
        nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM"
        nb_assert_file_no_match "$T/daemon-c2.log" 'Sanitizer|runtime error' "daemon output (sanitizers)"
        nb_emulator_stats >"$D/stats-stop.json"
        by_route=$(jq '.by_route.create // 0' "$D/stats-stop.json")
        requests=$(jq '.creates.requests' "$D/stats-stop.json")
        nb_step "after SIGTERM: $by_route create requests reached the emulator ($requests handled)"
        [ "$by_route" -le 2 ] || nb_fail "$by_route create requests reached the emulator after SIGTERM; at most 2 expected (the queued ones must be dropped)"
        [ "$requests" -le 2 ] || nb_fail "$requests create requests handled; at most 2 expected"

        emu_post "config?latency_ms=0"
        run_once --wait --timeout 120
        nb_assert_eq 0 "$rc" "once --wait after the stop: exit status"
        nb_emulator_stats >"$D/stats-once.json"
        nb_assert_eq "$N_Q" "$(jq '.creates.by_name | length' "$D/stats-once.json")" "names created"
        bad=$(jq -r '.creates.by_name | to_entries[] | select(.value.created != 1 or .value.duplicates != 0) | "\(.key) \(.value)"' "$D/stats-once.json")
        [ -z "$bad" ] || nb_fail "not exactly one instance per name: $bad"
        nb_assert_eq 0 "$(jq '.creates.duplicates' "$D/stats-once.json")" "duplicate creates"
        nb_assert_eq "$N_Q" "$(jq '.instances.live' "$D/stats-once.json")" "live instances"
        nb_assert_eq "$N_Q" "$(jq '.instances.by_status.RUNNING // 0' "$D/stats-once.json")" "RUNNING instances"
        nb_assert_eq 0 "$(jq '.protocol_violations.total' "$D/stats-once.json")" \
                "protocol violations ($(jq -c '.recent_violations' "$D/stats-once.json"))"
        status_json >"$D/status.json"
        nb_assert_eq "$N_Q" "$(jq '[.instances[] | select(.status == "RUNNING")] | length' "$D/status.json")" "RUNNING records"
        nb_assert_eq 0 "$(jq '.open_intents | length' "$D/status.json")" "open create intents"
}

# ---- 3. a poll on the wire at SIGTERM ----
# The poll's backoff doubles per attempt (ENGINE_POLL_BASE_MS 0.5 s, up to 30 s, half
# jitter): the answer to the 6th GET schedules the 7th poll 15 to 30 s later. The old
# engine scheduled that poll even when stopping and waited for its timer, so the stop
# grace (10 s) ran out; the fixed one finishes the poll as soon as the answer is in.
# Reaching the 6th poll takes 16 to 32 s of backoff: slow, but no shortcut exists.
case_3() {
        local emu_log get_re
        nb_step "3. SIGTERM while the 6th poll's answer is held 3 s: exit 0 before the stop grace"
        # The instance stays CREATING (60 s), so the daemon keeps polling it; GETs of the
        # instance are the only route the slow fault applies to (slow_ms set later).
        nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 60000 \
                --fault-routes get --log --seed 133
        # its log: emulator.log for the first of the test, emulator-N.log for the N-th
        local logs=("$T"/emulator*.log)
        emu_log=$T/emulator-${#logs[@]}.log
        [ "${#logs[@]}" -gt 1 ] || emu_log=$T/emulator.log
        get_re=' GET "?/v1/[^ ?"]*/demanager/instances/[0-9a-f-]+"? -> 200'
        case_dir c3
        nb_write_manifest "$M/p-one.yaml" p-one
        start_daemon daemon-c3
        nb_wait_for_line "$T/daemon-c3.log" 'Created notebook p-one' "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null
        # After the 5th GET the 6th comes 4 to 8 s later: time enough to make it slow.
        nb_wait_for_line "$emu_log" "$get_re" "$NB_TIMEOUT" 5 "$DAEMON_PID" >/dev/null
        emu_post "config?slow_ms=3000"
        # The emulator logs a request once handled, before holding its answer: from this
        # line on the 6th GET is on the wire and unanswered for 3 s.
        nb_wait_for_line "$emu_log" "$get_re" "$NB_TIMEOUT" 6 "$DAEMON_PID" >/dev/null
        nb_assert_eq 1 "$(nb_emulator_stats | jq '.faults.slow')" "slow answers (the 6th GET, held)"
        nb_stop "$DAEMON_PID" TERM
        nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM with a poll in flight"
        nb_assert_file_no_match "$T/daemon-c3.log" 'Sanitizer|runtime error' "daemon output (sanitizers)"
        nb_assert_file_no_match "$T/daemon-c3.log" 'did not finish within' "daemon output (the stop grace ran out)"
        nb_assert_file_match "$T/daemon-c3.log" 'stopping after 1 request in flight' "the STOPPING line (the held GET)"
        nb_emulator_stats >"$D/stats.json"
        nb_assert_eq 6 "$(jq '.by_route.get' "$D/stats.json")" "GETs: no poll after the stop"
        nb_assert_eq 1 "$(jq '.creates.created' "$D/stats.json")" "instances made"
}

# NB_CASES selects cases (e.g. "2"), to check one on its own against an old build.
for c in ${NB_CASES:-1 2 3}; do
        "case_$c"
done
nb_step "4. skipped: the emulator cannot answer 6301 for a name its listing does not show"
nb_step "ok"
