#!/usr/bin/env bash
# The lifecycle: the manifest's state: (start and stop) and prune (deleting what left
# the tree), against the emulator, checked on the emulator's own view (its listing and
# its request counters) and in the journal (MESSAGE_IDs and fields).
#   1. state: stopped on a RUNNING instance stops it, state: running starts it again
#      (once --wait), one action call each, never a re-creation, and nothing when
#      already there;
#   2. no state: an instance the cloud stopped by itself stays STOPPED (no start);
#   3. a new manifest with state: stopped: created, then stopped once it runs;
#   4. prune deletes exactly the owned instance absent past the grace, and stops it
#      first (it was RUNNING); the others are untouched; nothing more in the next pass;
#      its manifest restored, a new instance is created;
#   9. an absence shorter than the grace deletes nothing (just marked, and backdated
#      by less than the grace);
#  10. plan and plan --json show the pending deletion: hold "grace", due in the future;
#   5. an adopted instance is kept (prune_adopted: false), deleted with
#      prune_adopted: true (a STOPPED one: deleted without a stop);
#   6. 50 deletions over the cap of 5: none, exit 1, "prune held" and PRUNE_HELD (cap,
#      PRUNE_DUE=50); --prune-confirm=49 deletes none; --prune-confirm=50 all 50;
#   7. an emptied tree deletes nothing, even past the grace (PRUNE_REASON=tree);
#   8. an unreadable subdirectory deletes nothing (run without CAP_DAC_OVERRIDE, as
#      root ignores permissions) and starts no absence mark for the names in it;
#  11. the daemon: state: flipped by a file edit both ways, a new stopped manifest
#      created then stopped, an instance the cloud stopped left alone; a removed
#      manifest marked and kept for the grace, deleted by a full pass (SIGHUP) once
#      backdated past it.
# Time passing is simulated by backdating the absence marks in the state database
# (instances.undesired_since_ms) with sqlite3 between two runs of `once`; the grace is
# its minimum, 1m. Each part has its own manifests tree and state directory; the one
# emulator is shared (names are unique per part). Every wait is for an event (once
# --wait exiting, a journal entry); none is a sleep.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=LIFECYCLEAK000000001
SK=lifecycleSecretKey0123456789abcdefghiJKL
TOKEN=lifecycle-control-token
PROJECT=4c1f3c0de5a1e0b1c2d3e4f5a6b7c8d9
eval "$(nb_message_ids | sed 's/^\([A-Z_]*\) \([0-9a-f]*\)$/\1=\2/')"
# The feature's MESSAGE_IDs, as documented (a renumbering fails here).
nb_assert_eq 376ca9f1517e43eba53b47ee35d76f10 "$MESSAGE_STATE_ACTION" "MESSAGE_STATE_ACTION"
nb_assert_eq 5c9ed881123541a987d6cb3ad51684e8 "$MESSAGE_PRUNE_DELETING" "MESSAGE_PRUNE_DELETING"
nb_assert_eq d12deaad2dde4fb3b7e6076f9b69d8c8 "$MESSAGE_PRUNE_DELETED" "MESSAGE_PRUNE_DELETED"
nb_assert_eq 498cd7b73dd2473e98d2cf0874e0c85b "$MESSAGE_PRUNE_HELD" "MESSAGE_PRUNE_HELD"

command -v sqlite3 >/dev/null || nb_fail "sqlite3 missing (make deps)"
command -v setpriv >/dev/null || nb_fail "setpriv missing (util-linux)"

nb_start_journald
nb_start_emulator --ak "$AK" --sk "$SK" --token "$TOKEN" --project-id "$PROJECT" --log --seed 11 \
        --create-delay-ms 50 --action-delay-ms 100

GRACE_MS=60000

# ---- local helpers ----

# The emulator's listing of workspace "0", every owner: the test's own API call, with
# the control token (and X-Project-Id, as the contract wants: no protocol violation).
emu_list() {
        curl -fsS -H "X-Auth-Token: $TOKEN" -H "X-Project-Id: $PROJECT" \
                "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances?de_type=Notebook&show_self=false"
}
emu_status() { # NAME: its status, or "absent"
        emu_list | jq -r --arg n "$1" '[.instances[] | select(.name == $n) | .status] | first // "absent"'
}
emu_id() { # NAME
        emu_list | jq -r --arg n "$1" '[.instances[] | select(.name == $n) | .id] | first // ""'
}
# How many listed instances have a name starting with PREFIX.
emu_count() { # PREFIX
        emu_list | jq --arg p "$1" '[.instances[] | select(.name | startswith($p))] | length'
}
# Force a status behind notebookd's back (the cloud's idle stop, say).
emu_set_status() { # NAME STATUS
        curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/status?name=$1&status=$2" >/dev/null
}
route_count() { # ROUTE: API requests of that route so far
        nb_emulator_stats | jq --arg r "$1" '.by_route[$r] // 0'
}
# NAME's action and delete requests among the emulator's recent ones, in order:
# "action:200 delete:200". Only valid while fewer than 64 requests came since.
lifecycle_calls() { # NAME
        nb_emulator_stats | jq -r --arg n "$1" \
                '[.recent_requests[] | select(.name == $n and (.route == "action" or .route == "delete")) | "\(.route):\(.status)"] | join(" ")'
}
creates_of() { # NAME
        nb_emulator_stats | jq --arg n "$1" '.creates.by_name[$n].requests // 0'
}

manifest() { # FILE NAME [STATE]: written atomically (the daemon may be watching)
        {
                printf 'name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' "$2"
                [ -z "${3:-}" ] || printf 'state: %s\n' "$3"
        } >"$1.tmp"
        mv -f "$1.tmp" "$1"
}

# `once` on MANIFESTS and STATE (config: $T/config.yaml), logging to the journal; the
# report in $T/NAME.out.log, stderr in $T/NAME.err.log, the exit status in rc.
once() { # NAME MANIFESTS STATE [OPTION...]
        local name=$1 m=$2 s=$3
        shift 3
        rc=0
        nb_once "$m" "$s" --log-target=journal "$@" >"$T/$name.out.log" 2>"$T/$name.err.log" || rc=$?
}
# The same without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: root then meets file
# permissions like any user (its own state directory stays its own).
once_nodac() { # NAME MANIFESTS STATE [OPTION...]
        local name=$1 m=$2 s=$3
        shift 3
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
                setpriv --bounding-set=-dac_override,-dac_read_search \
                timeout 900 "$NOTEBOOKD" -c "$T/config.yaml" -m "$m" -s "$s" -e "$NB_EMULATOR_URL" \
                -p "$PROJECT" --log-target=journal "$@" once >"$T/$name.out.log" 2>"$T/$name.err.log" || rc=$?
}
plan() { # MANIFESTS STATE [OPTION...]: offline, like an operator's
        local m=$1 s=$2
        shift 2
        "$NOTEBOOKD" -c "$T/config.yaml" -m "$m" -s "$s" plan "$@"
}

# sqlite3 waiting for a lock (the daemon may be writing) rather than failing at once
sq() { sqlite3 -cmd ".timeout 10000" "$@"; }
# The absence mark of NAME in STATE's database (ms since the epoch; 0 = none).
mark_of() { # STATE NAME
        sq "$1/notebookd.db" "SELECT coalesce(undesired_since_ms, 0) FROM instances WHERE name = '$2'"
}
# Simulate time passing: every absence mark in STATE moves MS into the past.
backdate() { # STATE MS
        sq "$1/notebookd.db" \
                "UPDATE instances SET undesired_since_ms = undesired_since_ms - $2 WHERE undesired_since_ms > 0"
}
# Journal entries matching MATCHES, counted.
jcount() { # MATCHES...
        nb_journal_json "$@" | wc -l
}
now_ms() { date +%s%3N; }

# =====================================================================================
# Parts 1-3: state: with `once --wait`
# =====================================================================================
M1=$T/m1 S1=$T/s1
mkdir -p "$M1"
nb_write_config "$PROJECT" "$M1" "$S1"
manifest "$M1/flip.yaml" lc-flip
manifest "$M1/idle.yaml" lc-idle

nb_step "1: set-up: two instances without state:, RUNNING"
once c1-setup "$M1" "$S1" --wait
nb_assert_eq 0 "$rc" "once (set-up): exit status"
nb_assert_eq RUNNING "$(emu_status lc-flip)" "lc-flip after the set-up"
nb_assert_eq RUNNING "$(emu_status lc-idle)" "lc-idle after the set-up"
flip_id=$(emu_id lc-flip)
actions0=$(route_count action)
nb_assert_eq 0 "$actions0" "action calls for instances without state:"

nb_step "1: state: stopped on a RUNNING instance stops it"
manifest "$M1/flip.yaml" lc-flip stopped
plan "$M1" "$S1" >"$T/c1-plan-stop.log"
nb_assert_file_match "$T/c1-plan-stop.log" '^stop +lc-flip +.*RUNNING, the manifest says state: stopped' "plan before the stop"
once c1-stop "$M1" "$S1" --wait
nb_assert_eq 0 "$rc" "once (state: stopped): exit status"
nb_assert_eq STOPPED "$(emu_status lc-flip)" "lc-flip after state: stopped"
nb_assert_eq RUNNING "$(emu_status lc-idle)" "lc-idle (no state:) after lc-flip's stop"
nb_assert_eq $((actions0 + 1)) "$(route_count action)" "action calls after state: stopped (one stop)"
nb_assert_eq "action:200" "$(lifecycle_calls lc-flip)" "lc-flip's action/delete calls"
nb_assert_eq 1 "$(creates_of lc-flip)" "creates of lc-flip (state: is not part of the spec)"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=lc-flip | tail -n 1)
[ -n "$e" ] || nb_fail "no STATE_ACTION entry for lc-flip's stop"
nb_assert_eq "stop RUNNING stopped $flip_id" "$(jq -r '"\(.ACTION) \(.STATUS) \(.DESIRED_STATE) \(.INSTANCE_ID)"' <<<"$e")" \
        "STATE_ACTION fields of the stop"
nb_assert_file_match "$T/c1-stop.out.log" '^ok +"lc-flip" .* STOPPED$' "once's report after the stop"

nb_step "1: state: stopped on a STOPPED instance: nothing sent"
once c1-again "$M1" "$S1" --wait
nb_assert_eq 0 "$rc" "once (already stopped): exit status"
nb_assert_eq $((actions0 + 1)) "$(route_count action)" "action calls when already STOPPED"
nb_assert_eq STOPPED "$(emu_status lc-flip)" "lc-flip stays STOPPED"

nb_step "1: state: running on a STOPPED instance starts it"
manifest "$M1/flip.yaml" lc-flip running
once c1-start "$M1" "$S1" --wait
nb_assert_eq 0 "$rc" "once (state: running): exit status"
nb_assert_eq RUNNING "$(emu_status lc-flip)" "lc-flip after state: running"
nb_assert_eq $((actions0 + 2)) "$(route_count action)" "action calls after state: running (one start)"
nb_assert_eq "action:200 action:200" "$(lifecycle_calls lc-flip)" "lc-flip's action/delete calls"
nb_assert_eq 1 "$(creates_of lc-flip)" "creates of lc-flip after the flips"
nb_assert_eq 2 "$(jcount MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=lc-flip)" "STATE_ACTION entries of lc-flip"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=lc-flip | tail -n 1)
nb_assert_eq "start STOPPED running $flip_id" "$(jq -r '"\(.ACTION) \(.STATUS) \(.DESIRED_STATE) \(.INSTANCE_ID)"' <<<"$e")" \
        "STATE_ACTION fields of the start"
nb_assert_eq "$flip_id" "$(emu_id lc-flip)" "lc-flip's instance id (the same instance throughout)"

nb_step "1: status shows desired against actual"
# the record keeps the manifest's state:; a record whose status is not it says so
nb_assert_eq running "$(sqlite3 "$S1/notebookd.db" "SELECT desired_state FROM instances WHERE name = 'lc-flip'")" \
        "lc-flip's recorded state:"
nb_assert_eq "" "$(sqlite3 "$S1/notebookd.db" "SELECT COALESCE(desired_state, '') FROM instances WHERE name = 'lc-idle'")" \
        "lc-idle's recorded state: (none)"
"$NOTEBOOKD" -c "$T/config.yaml" -s "$S1" status >"$T/c1-status.log" 2>&1 || nb_fail "status failed"
nb_assert_file_match "$T/c1-status.log" '^lc-flip +[0-9a-f-]{36} +RUNNING +' "status: lc-flip RUNNING, as it wants"
sqlite3 "$S1/notebookd.db" "UPDATE instances SET status = 'STOPPED' WHERE name = 'lc-flip'"
"$NOTEBOOKD" -c "$T/config.yaml" -s "$S1" status >"$T/c1-status2.log" 2>&1 || nb_fail "status failed"
nb_assert_file_match "$T/c1-status2.log" '^lc-flip +[0-9a-f-]{36} +STOPPED \(wants running\) +' "status: desired against actual"
"$NOTEBOOKD" -c "$T/config.yaml" -s "$S1" --json status >"$T/c1-status.json" 2>&1 || nb_fail "status --json failed"
nb_assert_eq running "$(jq -r '.instances[] | select(.name == "lc-flip") | .desired_state' "$T/c1-status.json")" \
        "status --json: desired_state"
sqlite3 "$S1/notebookd.db" "UPDATE instances SET status = 'RUNNING' WHERE name = 'lc-flip'"

nb_step "2: no state:, the cloud stops the instance: it stays STOPPED, no start"
emu_set_status lc-idle STOPPED
nb_assert_eq STOPPED "$(emu_status lc-idle)" "lc-idle after the emulator stopped it"
actions1=$(route_count action)
once c2 "$M1" "$S1" --wait
nb_assert_eq 0 "$rc" "once (stopped by the cloud): exit status"
nb_assert_eq STOPPED "$(emu_status lc-idle)" "lc-idle after once"
nb_assert_eq "$actions1" "$(route_count action)" "action calls for an instance without state:"
nb_assert_eq "" "$(lifecycle_calls lc-idle)" "lc-idle's action/delete calls"
nb_assert_eq 0 "$(jcount MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=lc-idle)" "STATE_ACTION entries of lc-idle"
nb_assert_eq 1 "$(creates_of lc-idle)" "creates of lc-idle (a STOPPED instance is not missing)"

nb_step "3: a new manifest with state: stopped: created, then stopped"
manifest "$M1/born.yaml" lc-born stopped
once c3 "$M1" "$S1" --wait
nb_assert_eq 0 "$rc" "once (new, state: stopped): exit status"
nb_assert_eq STOPPED "$(emu_status lc-born)" "lc-born after once"
nb_assert_eq 1 "$(creates_of lc-born)" "creates of lc-born"
nb_assert_eq "action:200" "$(lifecycle_calls lc-born)" "lc-born's action/delete calls (one stop)"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=lc-born | tail -n 1)
[ -n "$e" ] || nb_fail "no STATE_ACTION entry for lc-born"
nb_assert_eq "stop RUNNING stopped" "$(jq -r '"\(.ACTION) \(.STATUS) \(.DESIRED_STATE)"' <<<"$e")" \
        "STATE_ACTION fields (stopped once it first ran)"
nb_assert_eq 1 "$(jcount MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" NOTEBOOK=lc-born)" "CREATE_ACCEPTED entries of lc-born"
nb_assert_eq STOPPED "$(emu_status lc-idle)" "lc-idle still STOPPED"
nb_assert_eq RUNNING "$(emu_status lc-flip)" "lc-flip still RUNNING"

# =====================================================================================
# Parts 4, 9, 10: prune of owned instances, the grace both ways, plan
# =====================================================================================
M4=$T/m4 S4=$T/s4
mkdir -p "$M4"
nb_write_config "$PROJECT" "$M4" "$S4" "prune: true" "prune_grace: 1m"
manifest "$M4/a.yaml" pr-a
manifest "$M4/b.yaml" pr-b
manifest "$M4/c.yaml" pr-c

nb_step "4: set-up: three instances created by notebookd"
once c4-setup "$M4" "$S4" --wait
nb_assert_eq 0 "$rc" "once (set-up): exit status"
for n in pr-a pr-b pr-c; do
        nb_assert_eq RUNNING "$(emu_status "$n")" "$n after the set-up"
        nb_assert_eq 0 "$(mark_of "$S4" "$n")" "$n's absence mark while desired"
done
nb_assert_eq 1 "$(sq "$S4/notebookd.db" "SELECT created_by_us FROM instances WHERE name = 'pr-a'")" \
        "pr-a's record: created_by_us"
a_id=$(emu_id pr-a)

nb_step "9: a manifest removed: the pass marks the absence and deletes nothing (grace)"
rm "$M4/a.yaml"
deletes0=$(route_count delete) actions0=$(route_count action)
t0=$(now_ms)
once c9-mark "$M4" "$S4" --wait
t1=$(now_ms)
nb_assert_eq 0 "$rc" "once (fresh absence): exit status"
nb_assert_eq RUNNING "$(emu_status pr-a)" "pr-a within the grace"
nb_assert_eq "$deletes0" "$(route_count delete)" "delete calls within the grace"
nb_assert_eq "$actions0" "$(route_count action)" "action calls within the grace"
mark=$(mark_of "$S4" pr-a)
[ "$mark" -ge "$t0" ] && [ "$mark" -le "$t1" ] ||
        nb_fail "pr-a's absence mark $mark is not the time of the pass that saw it gone ($t0..$t1)"
nb_assert_eq 0 "$(mark_of "$S4" pr-b)" "pr-b's absence mark (still desired)"
nb_assert_eq 0 "$(jcount MESSAGE_ID="$MESSAGE_PRUNE_DELETING" NOTEBOOK=pr-a)" "PRUNE_DELETING entries within the grace"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_GONE" NOTEBOOK=pr-a | tail -n 1)
nb_assert_eq grace "$(jq -r '.PRUNE_HOLD // ""' <<<"$e")" "GONE entry's PRUNE_HOLD"

nb_step "9: a second pass within the grace keeps the first mark and deletes nothing"
once c9-again "$M4" "$S4" --wait
nb_assert_eq 0 "$rc" "once (still within the grace): exit status"
nb_assert_eq "$mark" "$(mark_of "$S4" pr-a)" "pr-a's mark after a second pass (not restarted)"
nb_assert_eq RUNNING "$(emu_status pr-a)" "pr-a within the grace (second pass)"
nb_assert_eq "$deletes0" "$(route_count delete)" "delete calls within the grace (second pass)"

nb_step "10: plan shows the pending deletion, hold grace, due in the future"
plan "$M4" "$S4" >"$T/c10-plan.log"
nb_assert_file_match "$T/c10-plan.log" "^gone +pr-a +not in any valid manifest: $a_id RUNNING \\(to be deleted in [0-9]+[sm], once absent for the grace\\)$" \
        "plan's line for pr-a"
nb_assert_file_match "$T/c10-plan.log" '^ok +pr-b ' "plan's line for pr-b"
plan "$M4" "$S4" --json >"$T/c10-plan.json"
now=$(now_ms)
a=$(jq -c '.actions[] | select(.name == "pr-a")' "$T/c10-plan.json")
nb_assert_eq "gone grace" "$(jq -r '"\(.kind) \(.prune_hold)"' <<<"$a")" "plan --json: pr-a's kind and prune_hold"
due=$(jq -r '.prune_due_ms' <<<"$a")
nb_assert_eq $((mark + GRACE_MS)) "$due" "plan --json: pr-a's prune_due_ms (mark + grace)"
[ "$due" -gt "$now" ] || nb_fail "plan --json: prune_due_ms $due is not in the future (now $now)"
nb_assert_eq 0 "$(jq '.counts.delete' "$T/c10-plan.json")" "plan --json: deletions"
nb_assert_eq null "$(jq -c '.actions[] | select(.name == "pr-b") | .prune_hold' "$T/c10-plan.json")" \
        "plan --json: a desired name has no prune_hold"

nb_step "9: backdated by less than the grace: still nothing deleted"
backdate "$S4" 30000
once c9-short "$M4" "$S4" --wait
nb_assert_eq 0 "$rc" "once (absent 30s): exit status"
nb_assert_eq RUNNING "$(emu_status pr-a)" "pr-a absent for 30s of a 1m grace"
nb_assert_eq "$deletes0" "$(route_count delete)" "delete calls after 30s"
nb_assert_eq "$actions0" "$(route_count action)" "action calls after 30s"
nb_assert_eq $((mark - 30000)) "$(mark_of "$S4" pr-a)" "pr-a's mark after the backdate"

nb_step "10: past the grace, plan (offline) says the deletion is due"
backdate "$S4" 60000
plan "$M4" "$S4" --json >"$T/c10-plan-due.json"
now=$(now_ms)
a=$(jq -c '.actions[] | select(.name == "pr-a")' "$T/c10-plan-due.json")
nb_assert_match '^gone (unlisted|cap)$|^delete ' "$(jq -r '"\(.kind) \(.prune_hold // "")"' <<<"$a")" \
        "plan --json past the grace: pr-a (offline: no current listing)"
[ "$(jq -r '.prune_due_ms' <<<"$a")" -le "$now" ] || nb_fail "plan --json past the grace: prune_due_ms not in the past"

nb_step "4: past the grace: exactly the absent one is deleted, stopped first"
once c4-delete "$M4" "$S4" --wait
nb_assert_eq 0 "$rc" "once (past the grace): exit status"
nb_emulator_stats >"$T/c4-stats.json"
nb_assert_eq absent "$(emu_status pr-a)" "pr-a after the deletion"
nb_assert_eq RUNNING "$(emu_status pr-b)" "pr-b (desired) after the pass"
nb_assert_eq RUNNING "$(emu_status pr-c)" "pr-c (desired) after the pass"
nb_assert_eq $((deletes0 + 1)) "$(jq '.by_route.delete' "$T/c4-stats.json")" "delete calls (exactly one)"
nb_assert_eq "action:200 delete:200" "$(lifecycle_calls pr-a)" \
        "pr-a's calls: a stop, then the delete (never a delete of a running instance)"
nb_assert_eq 0 "$(jq '.by_error_code["ModelArts.6304"] // 0' "$T/c4-stats.json")" "deletes refused as running (6304)"
nb_assert_eq "" "$(lifecycle_calls pr-b)$(lifecycle_calls pr-c)" "calls for the desired instances"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_PRUNE_DELETING" NOTEBOOK=pr-a)
nb_assert_eq 1 "$(printf '%s\n' "$e" | grep -c .)" "PRUNE_DELETING entries of pr-a"
nb_assert_eq "$a_id RUNNING" "$(jq -r '"\(.INSTANCE_ID) \(.STATUS)"' <<<"$e")" "PRUNE_DELETING fields"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_PRUNE_DELETED" NOTEBOOK=pr-a)
nb_assert_eq "$a_id" "$(jq -r '.INSTANCE_ID' <<<"$e")" "PRUNE_DELETED entry of pr-a"
nb_assert_eq 0 "$(jcount MESSAGE_ID="$MESSAGE_PRUNE_DELETING" NOTEBOOK=pr-b)" "PRUNE_DELETING entries of pr-b"
nb_assert_eq 0 "$(jcount MESSAGE_ID="$MESSAGE_PRUNE_DELETING" NOTEBOOK=pr-c)" "PRUNE_DELETING entries of pr-c"
nb_assert_eq 1 "$(creates_of pr-b)" "creates of pr-b"

nb_step "4: the next pass deletes nothing more (the deleted one is not re-created)"
deletes1=$(route_count delete)
once c4-after "$M4" "$S4" --wait
nb_assert_eq 0 "$rc" "once (after the deletion): exit status"
nb_assert_eq "$deletes1" "$(route_count delete)" "delete calls in the pass after"
nb_assert_eq 1 "$(creates_of pr-a)" "creates of pr-a (not re-created)"
nb_assert_eq 2 "$(emu_count pr-)" "pr-* instances left"

nb_step "4: the manifest restored: a new instance"
manifest "$M4/a.yaml" pr-a
once c4-restore "$M4" "$S4" --wait
nb_assert_eq 0 "$rc" "once (restored): exit status"
nb_assert_eq RUNNING "$(emu_status pr-a)" "pr-a restored"
nb_assert_ne "$a_id" "$(emu_id pr-a)" "pr-a's instance id after the restore"
nb_assert_eq 2 "$(creates_of pr-a)" "creates of pr-a (once more after the restore)"
# The restored name's old absence mark goes in the pass that sees it back, even though
# that pass's create makes it busy (it once stayed, and removing the manifest again then
# deleted the new instance at once, without the grace).
nb_step "4: the restored name's mark is cleared; removed again, it gets the full grace"
nb_assert_eq 0 "$(mark_of "$S4" pr-a)" "pr-a's absence mark once desired again"
rm "$M4/a.yaml"
deletes1=$(route_count delete)
t0=$(now_ms)
once c4-again "$M4" "$S4" --wait
t1=$(now_ms)
nb_assert_eq 0 "$rc" "once (removed again): exit status"
nb_assert_eq RUNNING "$(emu_status pr-a)" "pr-a removed again, within the grace"
nb_assert_eq "$deletes1" "$(route_count delete)" "delete calls for a fresh absence"
mark=$(mark_of "$S4" pr-a)
[ "$mark" -ge "$t0" ] && [ "$mark" -le "$t1" ] ||
        nb_fail "pr-a's new absence mark $mark is not the time of this pass ($t0..$t1)"

# =====================================================================================
# Part 5: an adopted instance
# =====================================================================================
M5=$T/m5 S5=$T/s5
mkdir -p "$M5"
nb_write_config "$PROJECT" "$M5" "$S5" "prune: true" "prune_grace: 1m"
manifest "$M5/keep.yaml" ad-keep

nb_step "5: set-up: an instance made outside notebookd is adopted"
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/seed?name=ad-seeded&status=STOPPED" >/dev/null
seeded_id=$(emu_id ad-seeded)
manifest "$M5/seeded.yaml" ad-seeded
once c5-setup "$M5" "$S5" --wait
nb_assert_eq 0 "$rc" "once (adoption): exit status"
nb_assert_eq 0 "$(creates_of ad-seeded)" "creates of the seeded name"
nb_assert_eq 1 "$(jcount MESSAGE_ID="$MESSAGE_ADOPTED" NOTEBOOK=ad-seeded)" "ADOPTED entries"
nb_assert_eq "0 adopted" "$(sq "$S5/notebookd.db" "SELECT created_by_us || ' ' || result FROM instances WHERE name = 'ad-seeded'")" \
        "ad-seeded's record"

nb_step "5: its manifest removed, past the grace: kept (prune_adopted is off)"
rm "$M5/seeded.yaml"
deletes0=$(route_count delete) actions0=$(route_count action)
once c5-mark "$M5" "$S5" --wait
nb_assert_eq 0 "$rc" "once (mark): exit status"
[ "$(mark_of "$S5" ad-seeded)" -gt 0 ] || nb_fail "no absence mark for ad-seeded"
backdate "$S5" $((GRACE_MS + 60000))
once c5-held "$M5" "$S5" --wait
nb_assert_eq 0 "$rc" "once (adopted, past the grace): exit status"
nb_assert_eq STOPPED "$(emu_status ad-seeded)" "ad-seeded with prune_adopted off"
nb_assert_eq "$deletes0" "$(route_count delete)" "delete calls for an adopted instance"
nb_assert_eq "$actions0" "$(route_count action)" "action calls for an adopted instance"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_GONE" NOTEBOOK=ad-seeded | tail -n 1)
nb_assert_eq adopted "$(jq -r '.PRUNE_HOLD // ""' <<<"$e")" "GONE entry's PRUNE_HOLD"
plan "$M5" "$S5" --json >"$T/c5-plan.json"
nb_assert_eq '"adopted"' "$(jq -c '.actions[] | select(.name == "ad-seeded") | .prune_hold' "$T/c5-plan.json")" \
        "plan --json: ad-seeded's prune_hold"
plan "$M5" "$S5" >"$T/c5-plan.log"
nb_assert_file_match "$T/c5-plan.log" '^gone +ad-seeded +.*\(adopted, not created by notebookd: kept; prune_adopted is off\)$' \
        "plan's line for ad-seeded"

nb_step "5: prune_adopted: true: deleted (STOPPED: no stop sent)"
nb_write_config "$PROJECT" "$M5" "$S5" "prune: true" "prune_grace: 1m" "prune_adopted: true"
once c5-delete "$M5" "$S5" --wait
nb_assert_eq 0 "$rc" "once (prune_adopted: true): exit status"
nb_assert_eq absent "$(emu_status ad-seeded)" "ad-seeded with prune_adopted on"
nb_assert_eq RUNNING "$(emu_status ad-keep)" "ad-keep (desired)"
nb_assert_eq $((deletes0 + 1)) "$(route_count delete)" "delete calls (exactly one)"
nb_assert_eq "delete:200" "$(lifecycle_calls ad-seeded)" "ad-seeded's calls: the delete alone"
nb_assert_eq "$seeded_id" "$(nb_journal_json MESSAGE_ID="$MESSAGE_PRUNE_DELETED" NOTEBOOK=ad-seeded | jq -r .INSTANCE_ID)" \
        "PRUNE_DELETED entry of ad-seeded"

# =====================================================================================
# Part 6: a mass deletion over the cap
# =====================================================================================
M6=$T/m6 S6=$T/s6
N6=50
mkdir -p "$M6"
nb_write_config "$PROJECT" "$M6" "$S6" "prune: true" "prune_grace: 1m"
manifest "$M6/keeper.yaml" mass-keeper
for i in $(seq -w 1 $N6); do manifest "$M6/m-$i.yaml" "mass-$i"; done

# Entries with MESSAGE_ID of distinct mass-NN notebooks (the keeper not included).
mass_journal() { # MESSAGE_ID
        nb_journal_json MESSAGE_ID="$1" | jq -r .NOTEBOOK | awk '/^mass-[0-9]+$/' | sort -u | wc -l
}

nb_step "6: set-up: $N6 + 1 instances"
once c6-setup "$M6" "$S6" --wait
nb_assert_eq 0 "$rc" "once (set-up of $((N6 + 1))): exit status"
nb_assert_eq $((N6 + 1)) "$(emu_count mass-)" "mass-* instances"

nb_step "6: $N6 manifests removed, past the grace: over the cap, none deleted"
rm "$M6"/m-*.yaml
once c6-mark "$M6" "$S6" --wait
nb_assert_eq 0 "$rc" "once (marks): exit status"
nb_assert_eq $N6 "$(sq "$S6/notebookd.db" "SELECT count(*) FROM instances WHERE undesired_since_ms > 0")" \
        "absence marks"
backdate "$S6" $((GRACE_MS + 60000))
plan "$M6" "$S6" --json >"$T/c6-plan.json"
nb_assert_eq $N6 "$(jq '[.actions[] | select(.kind == "gone" and (.prune_hold == "unlisted" or .prune_hold == "cap"))] | length' "$T/c6-plan.json")" \
        "plan --json: due deletions (offline)"
deletes0=$(route_count delete) actions0=$(route_count action)
held0=$(jcount MESSAGE_ID="$MESSAGE_PRUNE_HELD")
once c6-cap "$M6" "$S6" --wait
nb_assert_eq 1 "$rc" "once (over the cap): exit status"
nb_assert_file_match "$T/c6-cap.err.log" "^notebookd: prune held: $N6 deletions due, over prune_max_per_pass 5" "once's stderr"
nb_assert_eq "$deletes0" "$(route_count delete)" "delete calls over the cap"
nb_assert_eq "$actions0" "$(route_count action)" "action calls over the cap (no stop either)"
nb_assert_eq $((N6 + 1)) "$(emu_count mass-)" "mass-* instances over the cap"
nb_assert_eq $((held0 + 1)) "$(jcount MESSAGE_ID="$MESSAGE_PRUNE_HELD")" "PRUNE_HELD entries"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_PRUNE_HELD" | tail -n 1)
nb_assert_eq "$N6 5 cap" "$(jq -r '"\(.PRUNE_DUE) \(.PRUNE_MAX) \(.PRUNE_REASON)"' <<<"$e")" "PRUNE_HELD fields"
nb_assert_match "prune held: $N6 deletions due" "$(jq -r .MESSAGE <<<"$e")" "PRUNE_HELD message"
nb_assert_eq 0 "$(mass_journal "$MESSAGE_PRUNE_DELETING")" "PRUNE_DELETING entries of mass-* over the cap"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_GONE" NOTEBOOK=mass-07 | tail -n 1)
nb_assert_eq cap "$(jq -r '.PRUNE_HOLD // ""' <<<"$e")" "GONE entry's PRUNE_HOLD (mass-07)"

nb_step "6: --prune-confirm=$((N6 - 1)): the count differs, none deleted"
once c6-confirm-short "$M6" "$S6" --wait --prune-confirm=$((N6 - 1))
nb_assert_eq 1 "$rc" "once --prune-confirm=$((N6 - 1)): exit status"
nb_assert_file_match "$T/c6-confirm-short.err.log" "^notebookd: prune held: $N6 deletions due, $((N6 - 1)) confirmed" "once's stderr"
nb_assert_eq "$deletes0" "$(route_count delete)" "delete calls with a wrong confirmation"
nb_assert_eq "$actions0" "$(route_count action)" "action calls with a wrong confirmation"
nb_assert_eq $((N6 + 1)) "$(emu_count mass-)" "mass-* instances with a wrong confirmation"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_PRUNE_HELD" | tail -n 1)
nb_assert_eq "$N6 cap" "$(jq -r '"\(.PRUNE_DUE) \(.PRUNE_REASON)"' <<<"$e")" "PRUNE_HELD fields (wrong confirmation)"
nb_assert_match "$N6 deletions due, $((N6 - 1)) confirmed" "$(jq -r .MESSAGE <<<"$e")" "PRUNE_HELD message (wrong confirmation)"

nb_step "6: --prune-confirm=$N6: all $N6 deleted, the keeper stays"
once c6-confirm "$M6" "$S6" --wait --prune-confirm=$N6
nb_assert_eq 0 "$rc" "once --prune-confirm=$N6: exit status"
nb_assert_file_no_match "$T/c6-confirm.err.log" 'prune held' "once's stderr"
nb_assert_eq 1 "$(emu_count mass-)" "mass-* instances after the confirmed deletion"
nb_assert_eq RUNNING "$(emu_status mass-keeper)" "mass-keeper"
nb_assert_eq $((deletes0 + N6)) "$(route_count delete)" "delete calls (exactly $N6)"
nb_assert_eq $((actions0 + N6)) "$(route_count action)" "action calls (a stop for each RUNNING one)"
nb_assert_eq $N6 "$(mass_journal "$MESSAGE_PRUNE_DELETING")" "PRUNE_DELETING entries of mass-*"
nb_assert_eq $N6 "$(mass_journal "$MESSAGE_PRUNE_DELETED")" "PRUNE_DELETED entries of mass-*"
nb_assert_eq 0 "$(nb_emulator_stats | jq '.by_error_code["ModelArts.6304"] // 0')" "deletes refused as running (6304)"

# =====================================================================================
# Part 7: an emptied tree
# =====================================================================================
M7=$T/m7 S7=$T/s7
mkdir -p "$M7"
nb_write_config "$PROJECT" "$M7" "$S7" "prune: true" "prune_grace: 1m"
manifest "$M7/x.yaml" em-x
manifest "$M7/y.yaml" em-y

nb_step "7: set-up: em-x absent past the grace, em-y still desired"
once c7-setup "$M7" "$S7" --wait
nb_assert_eq 0 "$rc" "once (set-up): exit status"
rm "$M7/x.yaml"
once c7-mark "$M7" "$S7" --wait
nb_assert_eq 0 "$rc" "once (mark): exit status"
backdate "$S7" $((GRACE_MS + 60000))

nb_step "7: every manifest removed: nothing deleted, even past the grace"
rm "$M7/y.yaml"
deletes0=$(route_count delete) actions0=$(route_count action)
held0=$(jcount MESSAGE_ID="$MESSAGE_PRUNE_HELD" PRUNE_REASON=tree)
once c7-empty "$M7" "$S7" --wait
nb_assert_eq 1 "$rc" "once (empty tree): exit status"
nb_assert_file_match "$T/c7-empty.err.log" '^notebookd: prune held: the manifests tree is not whole \(no valid manifest in the tree\)' \
        "once's stderr"
nb_assert_eq RUNNING "$(emu_status em-x)" "em-x (past the grace) with an empty tree"
nb_assert_eq RUNNING "$(emu_status em-y)" "em-y with an empty tree"
nb_assert_eq "$deletes0" "$(route_count delete)" "delete calls with an empty tree"
nb_assert_eq "$actions0" "$(route_count action)" "action calls with an empty tree"
nb_assert_eq 0 "$(mark_of "$S7" em-y)" "em-y's absence mark (an empty tree starts none)"
nb_assert_eq $((held0 + 1)) "$(jcount MESSAGE_ID="$MESSAGE_PRUNE_HELD" PRUNE_REASON=tree)" "PRUNE_HELD (tree) entries"
prc=0
plan "$M7" "$S7" --json >"$T/c7-plan.json" || prc=$? # (its exit status is not the point here)
nb_assert_eq '"tree"' "$(jq -c '.actions[] | select(.name == "em-x") | .prune_hold' "$T/c7-plan.json")" \
        "plan --json: em-x's prune_hold with an empty tree"

nb_step "7: control: em-y's manifest back, the due deletion of em-x happens"
manifest "$M7/y.yaml" em-y
once c7-whole "$M7" "$S7" --wait
nb_assert_eq 0 "$rc" "once (whole tree again): exit status"
nb_assert_eq absent "$(emu_status em-x)" "em-x once the tree is whole"
nb_assert_eq RUNNING "$(emu_status em-y)" "em-y"
nb_assert_eq $((deletes0 + 1)) "$(route_count delete)" "delete calls once the tree is whole"

# =====================================================================================
# Part 8: an unreadable subdirectory
# =====================================================================================
M8=$T/m8 S8=$T/s8
mkdir -p "$M8/team"
nb_write_config "$PROJECT" "$M8" "$S8" "prune: true" "prune_grace: 1m"
manifest "$M8/top.yaml" ur-top
manifest "$M8/gone.yaml" ur-gone
manifest "$M8/team/hidden.yaml" ur-hidden

nb_step "8: set-up: ur-gone absent past the grace"
once c8-setup "$M8" "$S8" --wait
nb_assert_eq 0 "$rc" "once (set-up): exit status"
rm "$M8/gone.yaml"
once c8-mark "$M8" "$S8" --wait
nb_assert_eq 0 "$rc" "once (mark): exit status"
backdate "$S8" $((GRACE_MS + 60000))

nb_step "8: a subdirectory unreadable: nothing deleted, no mark for its names"
chmod 000 "$M8/team"
nb_at_exit "chmod 0755 '$M8/team'"
# the set-up works only if the run without DAC capabilities really cannot read it
if setpriv --bounding-set=-dac_override,-dac_read_search ls "$M8/team" >/dev/null 2>&1; then
        nb_fail "setpriv without CAP_DAC_OVERRIDE can still read a 000 directory: the test cannot work"
fi
deletes0=$(route_count delete) actions0=$(route_count action)
once_nodac c8-unreadable "$M8" "$S8" --wait
nb_assert_eq 1 "$rc" "once (unreadable subdirectory): exit status"
nb_assert_file_match "$T/c8-unreadable.err.log" '^notebookd: prune held: the manifests tree is not whole \(.*team.*(Permission denied|cannot read)' \
        "once's stderr"
nb_assert_eq RUNNING "$(emu_status ur-gone)" "ur-gone (past the grace) with an unreadable subdirectory"
nb_assert_eq RUNNING "$(emu_status ur-hidden)" "ur-hidden (in the unreadable subdirectory)"
nb_assert_eq "$deletes0" "$(route_count delete)" "delete calls with an unreadable subdirectory"
nb_assert_eq "$actions0" "$(route_count action)" "action calls with an unreadable subdirectory"
nb_assert_eq 0 "$(mark_of "$S8" ur-hidden)" "ur-hidden's absence mark (unreadable is not absent)"
e=$(nb_journal_json MESSAGE_ID="$MESSAGE_PRUNE_HELD" PRUNE_REASON=tree | tail -n 1)
nb_assert_match 'team' "$(jq -r .MESSAGE <<<"$e")" "PRUNE_HELD (tree) message names the directory"

nb_step "8: control: readable again, the due deletion of ur-gone happens"
chmod 0755 "$M8/team"
once_nodac c8-readable "$M8" "$S8" --wait
nb_assert_eq 0 "$rc" "once (readable again): exit status"
nb_assert_eq absent "$(emu_status ur-gone)" "ur-gone once the tree is whole"
nb_assert_eq RUNNING "$(emu_status ur-hidden)" "ur-hidden"
nb_assert_eq RUNNING "$(emu_status ur-top)" "ur-top"
nb_assert_eq $((deletes0 + 1)) "$(route_count delete)" "delete calls once readable"

# =====================================================================================
# Part 11: the daemon
# =====================================================================================
MD=$T/md SD=$T/sd
mkdir -p "$MD"
nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$MD" "$SD" "resync_interval: 10m" "prune: true" "prune_grace: 1m"
manifest "$MD/flip.yaml" dm-flip
manifest "$MD/idle.yaml" dm-idle
nb_start_notify

nb_step "11: daemon: start-up"
nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
        -u HUAWEICLOUD_SDK_PROJECT_ID CREDENTIALS_DIRECTORY="$T/creds" \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
DAEMON_PID=$NB_PID
djournal() { nb_journal_json _PID="$DAEMON_PID" "$@"; }
nb_wait_for_line "$NB_NOTIFY_LOG" '(^| |\\n)READY=1' "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null
nb_wait_journal_names 2 '"STATUS":"RUNNING"' MESSAGE_ID="$MESSAGE_STATUS_CHANGED" _PID="$DAEMON_PID"
nb_assert_eq RUNNING "$(emu_status dm-flip)" "dm-flip at start-up"
dflip_id=$(emu_id dm-flip)

nb_step "11: daemon: an edit to state: stopped stops the instance"
manifest "$MD/flip.yaml" dm-flip stopped
e=$(nb_wait_for_journal '"ACTION":"stop"' 1 MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=dm-flip _PID="$DAEMON_PID")
nb_assert_eq "RUNNING stopped $dflip_id" "$(jq -r '"\(.STATUS) \(.DESIRED_STATE) \(.INSTANCE_ID)"' <<<"$e")" "STATE_ACTION fields"
nb_wait_for_journal '"STATUS":"STOPPED"' 1 MESSAGE_ID="$MESSAGE_STATUS_CHANGED" NOTEBOOK=dm-flip _PID="$DAEMON_PID" >/dev/null
nb_assert_eq STOPPED "$(emu_status dm-flip)" "dm-flip after the edit to state: stopped"

nb_step "11: daemon: an edit to state: running starts it again"
running0=$(djournal MESSAGE_ID="$MESSAGE_STATUS_CHANGED" NOTEBOOK=dm-flip STATUS=RUNNING | wc -l)
manifest "$MD/flip.yaml" dm-flip running
e=$(nb_wait_for_journal '"ACTION":"start"' 1 MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=dm-flip _PID="$DAEMON_PID")
nb_assert_eq "STOPPED running" "$(jq -r '"\(.STATUS) \(.DESIRED_STATE)"' <<<"$e")" "STATE_ACTION fields"
nb_wait_for_journal . $((running0 + 1)) MESSAGE_ID="$MESSAGE_STATUS_CHANGED" NOTEBOOK=dm-flip STATUS=RUNNING \
        _PID="$DAEMON_PID" >/dev/null
nb_assert_eq RUNNING "$(emu_status dm-flip)" "dm-flip after the edit to state: running"
nb_assert_eq "action:200 action:200" "$(lifecycle_calls dm-flip)" "dm-flip's calls: a stop and a start"
nb_assert_eq 1 "$(creates_of dm-flip)" "creates of dm-flip"
nb_assert_eq "$dflip_id" "$(emu_id dm-flip)" "dm-flip's instance id"

nb_step "11: daemon: a new manifest with state: stopped is created, then stopped"
manifest "$MD/born.yaml" dm-born stopped
nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" NOTEBOOK=dm-born _PID="$DAEMON_PID" >/dev/null
e=$(nb_wait_for_journal '"ACTION":"stop"' 1 MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=dm-born _PID="$DAEMON_PID")
nb_assert_eq "RUNNING stopped" "$(jq -r '"\(.STATUS) \(.DESIRED_STATE)"' <<<"$e")" "STATE_ACTION fields"
nb_wait_for_journal '"STATUS":"STOPPED"' 1 MESSAGE_ID="$MESSAGE_STATUS_CHANGED" NOTEBOOK=dm-born _PID="$DAEMON_PID" >/dev/null
nb_assert_eq STOPPED "$(emu_status dm-born)" "dm-born"
nb_assert_eq 1 "$(creates_of dm-born)" "creates of dm-born"
nb_assert_eq "action:200" "$(lifecycle_calls dm-born)" "dm-born's calls: one stop"

nb_step "11: daemon: no state:, the cloud stops the instance: a full pass leaves it STOPPED"
emu_set_status dm-idle STOPPED
fulls=$(djournal MESSAGE_ID="$MESSAGE_PASS_FINISHED" PASS_KIND=full | wc -l)
kill -HUP "$DAEMON_PID"
nb_wait_for_journal . $((fulls + 1)) MESSAGE_ID="$MESSAGE_PASS_FINISHED" PASS_KIND=full _PID="$DAEMON_PID" >/dev/null
nb_assert_eq 0 "$(djournal MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=dm-idle | wc -l)" "STATE_ACTION entries of dm-idle"
nb_assert_eq STOPPED "$(emu_status dm-idle)" "dm-idle after the full pass"
nb_assert_eq "" "$(lifecycle_calls dm-idle)" "dm-idle's calls"
nb_assert_eq 1 "$(djournal MESSAGE_ID="$MESSAGE_STATE_ACTION" NOTEBOOK=dm-born | wc -l)" \
        "STATE_ACTION entries of dm-born (stopped once, not again)"

nb_step "11: daemon: a manifest removed: marked, kept for the grace"
deletes0=$(route_count delete)
rm "$MD/idle.yaml"
e=$(nb_wait_for_journal '"PRUNE_HOLD":"grace"' 1 MESSAGE_ID="$MESSAGE_GONE" NOTEBOOK=dm-idle _PID="$DAEMON_PID")
# the pass writes its marks after acting, before it finishes: wait for its end (the
# first pass with a name gone; journalctl --after-cursor would skip it: systemd 252
# skips the first match after a cursor entry that does not match)
nb_wait_for_journal '"GONE":"1"' 1 MESSAGE_ID="$MESSAGE_PASS_FINISHED" _PID="$DAEMON_PID" >/dev/null
mark=$(mark_of "$SD" dm-idle)
[ "$mark" -gt 0 ] || nb_fail "no absence mark for dm-idle after the daemon's pass"
nb_assert_eq STOPPED "$(emu_status dm-idle)" "dm-idle within the grace"
nb_assert_eq "$deletes0" "$(route_count delete)" "delete calls within the grace"

nb_step "11: daemon: past the grace (backdated), a full pass deletes it"
backdate "$SD" $((GRACE_MS + 60000))
kill -HUP "$DAEMON_PID"
e=$(nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_PRUNE_DELETED" NOTEBOOK=dm-idle _PID="$DAEMON_PID")
nb_assert_eq absent "$(emu_status dm-idle)" "dm-idle after the daemon's prune"
nb_assert_eq $((deletes0 + 1)) "$(route_count delete)" "delete calls (exactly one)"
nb_assert_eq "delete:200" "$(lifecycle_calls dm-idle)" "dm-idle's calls (STOPPED: the delete alone)"
for n in dm-flip dm-born; do
        nb_assert_eq 0 "$(djournal MESSAGE_ID="$MESSAGE_PRUNE_DELETING" NOTEBOOK=$n | wc -l)" "PRUNE_DELETING entries of $n"
done
nb_assert_eq RUNNING "$(emu_status dm-flip)" "dm-flip after the prune"
nb_assert_eq STOPPED "$(emu_status dm-born)" "dm-born after the prune"

nb_stop "$DAEMON_PID" TERM
nb_assert_eq 0 "$NB_STATUS" "daemon's exit status after SIGTERM"
# (SANITIZE=1 builds: an error report ends the process, but say where)
for f in "$T"/daemon.log "$T"/*.err.log; do
        nb_assert_file_no_match "$f" 'Sanitizer|runtime error' "$(basename "$f") (sanitizers)"
done
nb_emulator_stats >"$T/final-stats.json"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/final-stats.json")" \
        "protocol violations ($(jq -c '.recent_violations[-3:]' "$T/final-stats.json"))"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/final-stats.json")" "duplicate creates"

nb_step "ok"
