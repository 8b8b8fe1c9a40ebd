#!/usr/bin/env bash
# `notebookd plan --live`: the cloud listed (ModelArts: list calls only), the next pass shown exactly,
# and an exit status a CI job can gate a merge on, against the emulator:
#   1. a new manifest: a create line, exit 4 (changes); no state directory is made;
#   2. converged by once: "nothing to do", exit 0, --json nothing_to_do;
#   3. an instance the emulator has but the state database does not: adopt; a STOPPED
#      one whose manifest says state: running: start; a changed flavor: drift (needs
#      re-creation); a removed manifest under prune: a pending deletion with its hold
#      (grace); a new one: create. All at once, exit 4, each line, and --json (jq);
#   4. none of it sent anything but list calls, nor changed the state database (its
#      dump is the same); then once does exactly those (the plan was the pass);
#   5. invalid manifests with changes: exit 1 (the error wins, the plan still printed);
#   6. a listing that fails (HTTP 500): exit 3, the workspace named on stderr; one
#      denied by an IAM policy (403 0108): exit 2; one refused for good (400): exit 1;
#   7. a wrong SK, and no credentials at all: the same message and exit 2 as once;
#   8. --live with another verb: a usage error.
# Every run is a process that exits; nothing is waited for by time.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=PLANLIVEAK0000000001
SK=planLiveSecretKey0123456789abcdefghijKLM
WRONG_SK=planLiveWrongSecretKey9876543210zyxwvUT
PROJECT=11a2b3c4d5e6f708192a3b4c5d6e7f80

command -v sqlite3 >/dev/null || nb_fail "sqlite3 missing (make deps)"
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 --action-delay-ms 0 --seed 7

M=$T/manifests
S=$T/state
mkdir -p "$M"
printf 'prune: true\nprune_grace: 1h\n' >"$T/config.yaml"

# run NAME [VAR=VALUE...] -- ARGS...: notebookd with only the credentials given, output
# in $T/NAME.{out,err}, exit status in rc. `timeout` only turns a hang into a failure.
run() {
        local name=$1
        shift
        local vars=()
        while [ "$1" != -- ]; do
                vars+=("$1")
                shift
        done
        shift
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
                -u HUAWEICLOUD_SDK_PROJECT_ID "${vars[@]}" \
                timeout 300 "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$S" -e "$NB_EMULATOR_URL" -p "$PROJECT" \
                --log-target=console "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
}
CREDS=(HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK")
live() { run "$1" "${CREDS[@]}" -- "${@:2}" plan --live; }
once() { run once "${CREDS[@]}" -- once; }
manifest() { # NAME [EXTRA LINE...]
        local n=$1
        shift
        {
                printf 'name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n' "$n"
                [ $# -eq 0 ] || printf '%s\n' "$@"
                printf 'spec:\n  storage:\n    type: evs\n'
        } >"$M/$n.yaml"
}
line() { # FILE ERE [WHAT]
        nb_assert_file_match "$1" "$2" "${3:-$(basename "$1")}"
}
# the API calls the emulator counted, by route, as "create list get delete action"
routes() { nb_emulator_stats | jq -r '.by_route | "\(.create) \(.list) \(.get) \(.delete) \(.action)"'; }
emu() { curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/$1" >/dev/null; }
db_dump() { sqlite3 "$S/notebookd.db" .dump; }

# ---- 1. a new manifest ----
nb_step "a new manifest: a create, exit 4, nothing written"
manifest keep-1
manifest keep-2 'state: running'
manifest keep-3
manifest gone-1
before=$(routes)
live p1
nb_assert_eq 4 "$rc" "plan --live with new manifests: exit status"
line "$T/p1.out" '^create +keep-1 +not created yet$'
line "$T/p1.out" '^4 desired: 4 create$'
line "$T/p1.out" '^4 changes for the next pass$'
[ ! -s "$T/p1.err" ] || nb_fail "plan --live wrote to stderr: $(cat "$T/p1.err")"
[ ! -e "$S" ] || nb_fail "plan --live created the state directory"
read -r c l g d a <<<"$before"
read -r c2 l2 g2 d2 a2 <<<"$(routes)"
nb_assert_eq "$c $g $d $a" "$c2 $g2 $d2 $a2" "create, get, delete and action calls made by plan --live"
[ "$l2" -gt "$l" ] || nb_fail "plan --live listed nothing (list calls $l -> $l2)"

# ---- 2. converged ----
nb_step "converged by once: nothing to do, exit 0"
once
nb_assert_eq 0 "$rc" "once: exit status ($(cat "$T/once.err"))"
live p2
nb_assert_eq 0 "$rc" "plan --live when converged: exit status ($(cat "$T/p2.out" "$T/p2.err"))"
line "$T/p2.out" '^ok +keep-1 +[0-9a-f-]{36} RUNNING$'
line "$T/p2.out" '^ok +keep-2 +[0-9a-f-]{36} RUNNING \(state: running\)$'
line "$T/p2.out" '^4 desired: 4 ok$'
nb_assert_eq "nothing to do" "$(tail -n 1 "$T/p2.out")" "the last line"
live p2j --json
nb_assert_eq 0 "$rc" "plan --live --json when converged: exit status"
jq -e '.live == true and .offline == false and .changes == 0 and .nothing_to_do == true and .unlisted == []
        and ([.actions[] | select(.change)] | length) == 0' "$T/p2j.out" >/dev/null ||
        nb_fail "plan --live --json when converged: $(jq -c '{live, offline, changes, nothing_to_do, unlisted}' "$T/p2j.out")"

# ---- 3. every kind of change at once ----
nb_step "adopt, start, drift, a pending deletion and a create, at once"
emu "seed?name=found-1&status=RUNNING"                  # in the cloud, not recorded
manifest found-1
emu "status?name=keep-2&status=STOPPED"                  # stopped; its manifest says running
sed -i 's/cpu\.2u/cpu.8u/' "$M/keep-3.yaml"              # the flavor changed: drift
rm "$M/gone-1.yaml"                                      # prune: a pending deletion
manifest new-1                                           # a create
db_dump >"$T/db-before.sql"
before=$(routes)
live p3
nb_assert_eq 4 "$rc" "plan --live with changes: exit status ($(cat "$T/p3.err"))"
line "$T/p3.out" '^adopt +found-1 +exists remotely as [0-9a-f-]{36} \(RUNNING\): adopt$'
line "$T/p3.out" '^start +keep-2 +[0-9a-f-]{36} is STOPPED, the manifest says state: running: start$'
line "$T/p3.out" "^drift +keep-3 +[0-9a-f-]{36} RUNNING differs: .*flavor: manifest 'modelarts.vm.cpu.8u', remote 'modelarts.vm.cpu.2u' \(needs re-creation\)$"
line "$T/p3.out" '^gone +gone-1 +not in any valid manifest: [0-9a-f-]{36} RUNNING \(to be deleted in (59m|1h), once absent for the grace\)$'
line "$T/p3.out" '^create +new-1 +not created yet$'
line "$T/p3.out" '^ok +keep-1 +'
line "$T/p3.out" '^5 desired: 1 create, 1 adopt, 1 drift, 1 ok, 1 gone, 1 start$'
nb_assert_eq "5 changes for the next pass" "$(tail -n 1 "$T/p3.out")" "the last line"
live p3j --json
nb_assert_eq 4 "$rc" "plan --live --json with changes: exit status"
jq -e '.changes == 5 and .nothing_to_do == false and .counts.create == 1 and .counts.adopt == 1
        and .counts.start == 1 and .counts.drift == 1 and .counts.gone == 1 and .counts.ok == 1' "$T/p3j.out" >/dev/null ||
        nb_fail "plan --live --json counts: $(jq -c '{changes, counts}' "$T/p3j.out")"
kind() { jq -r --arg n "$1" '.actions[] | select(.name == $n) | "\(.kind) \(.change)"' "$T/p3j.out"; }
nb_assert_eq "adopt true" "$(kind found-1)" "found-1 in --json"
nb_assert_eq "start true" "$(kind keep-2)" "keep-2 in --json"
nb_assert_eq "drift true" "$(kind keep-3)" "keep-3 in --json"
nb_assert_eq "gone true" "$(kind gone-1)" "gone-1 in --json"
nb_assert_eq "create true" "$(kind new-1)" "new-1 in --json"
nb_assert_eq "ok false" "$(kind keep-1)" "keep-1 in --json"
jq -e '.actions[] | select(.name == "keep-3") | .drift == ["spec", "flavor"]' "$T/p3j.out" >/dev/null ||
        nb_fail "keep-3's drift fields: $(jq -c '.actions[] | select(.name == "keep-3") | .drift' "$T/p3j.out")"
jq -e '.actions[] | select(.name == "gone-1") | .prune_hold == "grace" and .prune_due_ms > 0' "$T/p3j.out" >/dev/null ||
        nb_fail "gone-1's prune hold: $(jq -c '.actions[] | select(.name == "gone-1")' "$T/p3j.out")"
jq -e '.actions[] | select(.name == "found-1") | .status == "RUNNING" and (.instance_id | length) == 36' "$T/p3j.out" \
        >/dev/null || nb_fail "found-1's instance: $(jq -c '.actions[] | select(.name == "found-1")' "$T/p3j.out")"

# ---- 4. only GETs, nothing written; then once does what the plan said ----
nb_step "plan --live sent only list calls and wrote nothing"
read -r c l g d a <<<"$before"
read -r c2 l2 g2 d2 a2 <<<"$(routes)"
nb_assert_eq "$c $g $d $a" "$c2 $g2 $d2 $a2" "create, get, delete and action calls made by plan --live"
[ "$l2" -ge $((l + 2)) ] || nb_fail "two plan --live runs made $((l2 - l)) list calls"
db_dump >"$T/db-after.sql"
diff -u "$T/db-before.sql" "$T/db-after.sql" >&2 || nb_fail "plan --live changed the state database"
nb_assert_eq 0 "$(nb_emulator_stats | jq '.protocol_violations.total')" "protocol violations"

nb_step "once then does exactly that: one create, one start, no deletion yet"
once
nb_assert_eq 0 "$rc" "once after the plan: exit status ($(cat "$T/once.err"))"
read -r c3 _ _ d3 a3 <<<"$(routes)"
nb_assert_eq "$((c2 + 1)) $d2 $((a2 + 1))" "$c3 $d3 $a3" "creates, deletes, actions made by once"
live p4
nb_assert_eq 4 "$rc" "plan --live after once: exit status (drift and the deletion remain)"
nb_assert_file_no_match "$T/p4.out" '^(adopt|start|create) ' "plan --live after once (an adoption, start or create left)"
line "$T/p4.out" '^drift +keep-3 '
line "$T/p4.out" '^gone +gone-1 .*to be deleted in'
nb_assert_eq "2 changes for the next pass" "$(tail -n 1 "$T/p4.out")" "the last line"
# back to converged: the manifests as the cloud has them
sed -i 's/cpu\.8u/cpu.2u/' "$M/keep-3.yaml"
manifest gone-1
live p5
nb_assert_eq 0 "$rc" "plan --live, converged again: exit status ($(cat "$T/p5.out"))"
nb_assert_eq "nothing to do" "$(tail -n 1 "$T/p5.out")" "the last line"

# ---- 5. invalid manifests and changes ----
nb_step "an invalid manifest beside a change: exit 1, the plan still printed"
manifest new-2
printf 'name: broken\nflavour: x\n' >"$M/broken.yaml"
live p6
nb_assert_eq 1 "$rc" "plan --live with an invalid manifest and a change: exit status"
line "$T/p6.err" "broken.yaml:2:1: error: unknown key 'flavour'"
line "$T/p6.out" '^create +new-2 +not created yet$'
line "$T/p6.out" '^7 desired, 1 invalid manifest \(not applied\): 1 create, 6 ok$'
rm "$M/broken.yaml" "$M/new-2.yaml"

# ---- 6. a listing that fails ----
nb_step "a listing answered 500: exit 3, the workspace named"
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/config?fail_5xx_next=1&fault_routes=list" >/dev/null
live p7
nb_assert_eq 3 "$rc" "plan --live with a failed listing: exit status"
line "$T/p7.err" '^notebookd: plan: cannot list workspace 0: .*500'
line "$T/p7.out" '^wait +keep-1 +the listing of workspace 0 failed'
line "$T/p7.out" '^incomplete: 1 workspace could not be listed'

# A listing refused for good: running again cannot help, so not 3.
nb_step "a listing denied by an IAM policy (403 0108): exit 2; refused for good (400): exit 1"
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/config?deny_next=1&fault_routes=list" >/dev/null
live p7d
nb_assert_eq 2 "$rc" "plan --live with a listing denied by a policy: exit status ($(cat "$T/p7d.err"))"
line "$T/p7d.err" '^notebookd: plan: cannot list workspace 0: '
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/config?refuse_next=1&fault_routes=list" >/dev/null
live p7r
nb_assert_eq 1 "$rc" "plan --live with a listing refused for good: exit status ($(cat "$T/p7r.err"))"
line "$T/p7r.err" '^notebookd: plan: cannot list workspace 0: '
curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/config?fault_routes=all" >/dev/null

# ---- 7. credentials: as once ----
nb_step "a wrong SK: the same message and exit status as once"
run once-bad HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$WRONG_SK" -- --timeout 30 once
once_rc=$rc
run live-bad HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$WRONG_SK" -- plan --live
nb_assert_eq 2 "$once_rc" "once with a wrong SK: exit status"
nb_assert_eq 2 "$rc" "plan --live with a wrong SK: exit status"
want=$(grep '^notebookd: authentication failed: ' "$T/once-bad.err") || nb_fail "once said: $(cat "$T/once-bad.err")"
nb_assert_eq "$want" "$(grep '^notebookd: authentication failed: ' "$T/live-bad.err")" "plan --live's message"
[ ! -s "$T/live-bad.out" ] || nb_fail "plan --live printed a plan after an authentication failure"
for f in once-bad live-bad; do
        ! grep -qF -- "$WRONG_SK" "$T/$f.out" "$T/$f.err" || nb_fail "$f: the secret key was printed"
done
emu reset # two bad signatures so far; the AK locks at five

nb_step "no credentials at all: the same message and exit status as once, nothing sent"
before=$(nb_emulator_stats | jq '.requests')
run once-none -- once
once_rc=$rc
run live-none -- plan --live
nb_assert_eq 2 "$once_rc" "once without credentials: exit status"
nb_assert_eq 2 "$rc" "plan --live without credentials: exit status"
want=$(grep 'Credentials: ' "$T/once-none.err") || nb_fail "once said: $(cat "$T/once-none.err")"
nb_assert_eq "$want" "$(grep 'Credentials: ' "$T/live-none.err")" "plan --live's message"
nb_assert_eq $((before + 1)) "$(nb_emulator_stats | jq '.requests')" "requests sent without credentials (the stats call itself is 1)"

# ---- 8. usage ----
nb_step "--live belongs to plan"
run status-live "${CREDS[@]}" -- --live status
nb_assert_eq 2 "$rc" "status --live: exit status"
line "$T/status-live.err" 'live is an option of plan only'

nb_step "ok"
