#!/usr/bin/env bash
# Tenants (the host config's tenants:, README "Teams") end to end, through `notebookd once`
# against the emulator, the journal, plan, status and check:
#   1. every rule (name_prefix, workspaces explicit and defaulted, obs_paths, flavors,
#      profiles, a file under no tenant, "vision2/" not under "vision/") is refused with
#      its FILE:LINE:COLUMN diagnostic by once, exit 1; both tenants' good manifests are
#      created, no create is sent for a bad one;
#   2. a tenant past max_instances: exactly its first two in name order (not file order;
#      an invalid manifest takes no place) are created, the third never sent, while every
#      manifest of the other tenant is created in the same run;
#   3. a name in two tenants' trees is the prefix owner's: its document (not the copy's
#      workspace, flavor or description) is the instance made, the copy is the error;
#   4. a 6301 for an instance of the same name in another team's workspace is never
#      adopted (names are global in the emulator, so it is a blocked name conflict, not
#      sent again), while the same situation in the tenant's own workspace is adopted;
#   5. every journal entry with NOTEBOOK= carries the right TENANT=, and so does the
#      "no longer desired" entry of a name gone from the tree (from its record when its
#      tenant has no name_prefix);
#   6. plan and status: the TENANT column, --tenant NAME, --tenant of an unknown name
#      (exit 2), and "tenant" in --json;
#   7. check -c CONF DIR prints exactly once's diagnostics and exits 1;
#   8. prune: a tenant's broken manifest holds its own deletions (no grace starts), never
#      another tenant's.
# The emulator is reset between steps, so each step's counters and instances are its own.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
nb_setup "$@"
nb_start_journald

AK=TENANTSTESTAK0000001
SK=tenantsTestSecretKey0123456789abcdefghiJ
TOKEN=tenants-control-token
PROJECT=7e4a1b2c3d4e5f60718293a4b5c6d7e8
nb_start_emulator --ak "$AK" --sk "$SK" --token "$TOKEN" --project-id "$PROJECT" --log \
        --create-delay-ms 0 --seed 11

cd "$T" || exit # manifest paths in the diagnostics are then short and relative: m1/vision/...
CONF=$T/config.yaml
# nlp's path without its trailing '/' on purpose: it is still the tenant "nlp" of nlp/.
nb_write_config "$PROJECT" "$T/m1" "$T/state-unused" \
        'tenants:' \
        '  - path: vision/' \
        '    name_prefix: vis-' \
        '    workspaces: ["0", "ws-vision"]' \
        '    obs_paths: ["vision-bucket/"]' \
        '    flavors: ["modelarts.vm.cpu.*"]' \
        '    profiles: ["Python3"]' \
        '    max_instances: 20' \
        '  - path: nlp' \
        '    name_prefix: nlp-' \
        '    workspaces: ["ws-nlp"]' \
        '    max_instances: 2' \
        '  - path: shared/'

# ---- local helpers ----
WORKSPACES=(0 ws-vision ws-nlp ws-shared)

reset_emulator() { curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/reset" >/dev/null; }
seed() { curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/seed?$1"; } # QUERY -> the instance's JSON
# Everything the emulator holds in the workspaces this test uses, whoever owns it, one
# "NAME WORKSPACE FLAVOR" line each, sorted: the emulator's own view, not notebookd's.
inventory() {
        local ws
        for ws in "${WORKSPACES[@]}"; do
                curl -fsS -H "X-Auth-Token: $TOKEN" -H "X-Project-Id: $PROJECT" \
                        "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances?de_type=Notebook&show_self=false&workspace_id=$ws" |
                        jq -r '.instances[] | "\(.name) \(.workspace.id) \(.flavor)"'
        done | LC_ALL=C sort
}
# inventory equals EXPECTED, and it is all the emulator holds (its live count agrees:
# nothing went to a workspace the inventory does not list).
assert_inventory() { # EXPECTED WHAT
        local got
        got=$(inventory)
        nb_assert_eq "$1" "$got" "$2"
        nb_assert_eq "$(printf '%s\n' "$got" | grep -c .)" "$(nb_emulator_stats | jq '.instances.live')" "$2: live count"
}
# One instance as the emulator's listing of WORKSPACE shows it, as compact JSON.
instance_in() { # WORKSPACE NAME
        curl -fsS -H "X-Auth-Token: $TOKEN" -H "X-Project-Id: $PROJECT" \
                "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances?de_type=Notebook&show_self=false&workspace_id=$1" |
                jq -c --arg n "$2" '.instances[] | select(.name == $n) | {id, workspace: .workspace.id, flavor, description}'
}
per_name() { # STATS_FILE NAME -> "requests created duplicates"
        jq -r --arg n "$2" '.creates.by_name[$n] // {requests: 0, created: 0, duplicates: 0} | "\(.requests) \(.created) \(.duplicates)"' "$1"
}
status_json() { "$NOTEBOOKD" -c "$CONF" -s "$1" --json status; }
rec() { # STATUS_FILE NAME -> "result instance_id tenant"
        jq -r --arg n "$2" '.instances[] | select(.name == $n) | "\(.result) \(.instance_id) \(.tenant)"' "$1"
}
# A manifest document: NAME, then optional "workspace=W", "flavor=F", "profile=P",
# "obs=PATH", "description=D". Lines: name 1, profile_id 2, flavor 3, [description],
# [workspace 2 lines], spec...
doc() { # NAME [KEY=VALUE...]
        local name=$1 ws='' flavor=modelarts.vm.cpu.2u profile=Python3 obs='' desc='' kv
        shift
        for kv in "$@"; do
                case $kv in
                workspace=*) ws=${kv#*=} ;;
                flavor=*) flavor=${kv#*=} ;;
                profile=*) profile=${kv#*=} ;;
                obs=*) obs=${kv#*=} ;;
                description=*) desc=${kv#*=} ;;
                *) nb_fail "doc: $kv" ;;
                esac
        done
        printf 'name: %s\nprofile_id: %s\nflavor: %s\n' "$name" "$profile" "$flavor"
        [ -z "$desc" ] || printf 'description: %s\n' "$desc"
        [ -z "$ws" ] || printf 'workspace:\n  id: "%s"\n' "$ws"
        if [ -n "$obs" ]; then
                printf 'spec:\n  storage:\n    type: obs\n    location:\n      path: %s\n' "$obs"
        else
                printf 'spec:\n  storage:\n    type: evs\n'
        fi
}
# Run once on MANIFESTS with STATE: stdout in $T/NAME.out, stderr in $T/NAME.err.log;
# sets RC.
run_once() { # NAME MANIFESTS STATE [OPTION...]
        local name=$1 m=$2 s=$3
        shift 3
        RC=0
        nb_once "$m" "$s" --timeout 120 "$@" >"$T/$name.out" 2>"$T/$name.err.log" || RC=$?
}
# The diagnostics lines of a stderr file (those about files under DIR), sorted.
diags_of() { # FILE DIR
        grep -E "^$2/[^ ]+:[0-9]+:[0-9]+: error: " "$1" | LC_ALL=C sort || true
}
assert_diags() { # FILE DIR EXPECTED(one per line) WHAT
        local got want
        got=$(diags_of "$1" "$2")
        want=$(printf '%s\n' "$3" | LC_ALL=C sort)
        [ "$got" = "$want" ] || nb_fail "$4: diagnostics differ:
--- expected
$want
--- got
$got"
}

# ---- 1. every rule, through once ----
nb_step "1: each tenant rule is a FILE:LINE:COLUMN error in once; both tenants' good manifests are created"
mkdir -p m1/vision m1/vision2 m1/nlp m1/other
doc vis-good >m1/vision/good.yaml
doc vis-data-ok workspace=ws-vision flavor=modelarts.vm.cpu.8u obs=vision-bucket/data/ >m1/vision/data.yaml
{
        doc nlp-stolen                                                  # 1-6: name_prefix (1:7)
        echo ---                                                        # 7
        doc vis-elsewhere workspace=ws-nlp                              # 8-15: workspaces (12:7)
        echo ---                                                        # 16
        doc vis-gpu flavor=modelarts.vm.gpu.v100                        # 17-22: flavors (19:9)
        echo ---                                                        # 23
        doc vis-py2 profile=Python2                                     # 24-29: profiles (25:13)
        echo ---                                                        # 30
        doc vis-bucket workspace=ws-vision obs=nlp-bucket/data/         # 31-40: obs_paths (40:13)
} >m1/vision/rules.yaml
{
        doc nlp-good workspace=ws-nlp                                   # 1-8
        echo ---                                                        # 9: where nlp-default starts
        doc nlp-default                                                 # 10-15: the default workspace (9:1)
        echo ---                                                        # 16
        doc vis-in-nlp workspace=ws-nlp                                 # 17-24: name_prefix (17:7)
} >m1/nlp/team.yaml
doc orphan >m1/other/lost.yaml                                          # under no tenant (1:1)
doc vis-next-door >m1/vision2/near.yaml                                 # "vision2/" is not "vision/"
EXPECTED1="m1/nlp/team.yaml:9:1: error: workspace.id defaults to '0', which is not one of tenant nlp's workspaces (in $CONF): name one
m1/nlp/team.yaml:17:7: error: name 'vis-in-nlp' must start with 'nlp-' (tenant nlp in $CONF)
m1/other/lost.yaml:1:1: error: not under the path of any tenant in $CONF: its manifests are not applied
m1/vision2/near.yaml:1:1: error: not under the path of any tenant in $CONF: its manifests are not applied
m1/vision/rules.yaml:1:7: error: name 'nlp-stolen' must start with 'vis-' (tenant vision in $CONF)
m1/vision/rules.yaml:12:7: error: workspace 'ws-nlp' is not one of tenant vision's workspaces (in $CONF)
m1/vision/rules.yaml:19:9: error: flavor 'modelarts.vm.gpu.v100' is not allowed by tenant vision's 'flavors' in $CONF
m1/vision/rules.yaml:25:13: error: profile_id 'Python2' is not allowed by tenant vision's 'profiles' in $CONF
m1/vision/rules.yaml:40:13: error: OBS path 'nlp-bucket/data/' is outside tenant vision's obs_paths (in $CONF)"

run_once once1 m1 "$T/state1"
nb_assert_eq 1 "$RC" "once with invalid tenant manifests: exit status"
assert_diags "$T/once1.err.log" m1 "$EXPECTED1" "once (step 1)"
assert_inventory "nlp-good ws-nlp modelarts.vm.cpu.2u
vis-data-ok ws-vision modelarts.vm.cpu.8u
vis-good 0 modelarts.vm.cpu.2u" "instances in the emulator after step 1"
nb_emulator_stats >"$T/stats1.json"
nb_assert_eq 3 "$(jq '.creates.requests' "$T/stats1.json")" "create requests (one per good manifest, none for a bad one)"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats1.json")" "6301 answers"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats1.json")" "protocol violations"
nb_assert_eq 3 "$(grep -cE '^ok +"(vis-good|vis-data-ok|nlp-good)" ' "$T/once1.out")" "once's report: the three good ones ok"
nb_assert_file_match "$T/once1.out" '^3 desired: 3 running, .*; 9 invalid manifest documents$' "once's summary"

# ---- 2. max_instances ----
nb_step "2: nlp past max_instances: its first two in name order are created, the third not; vision converges"
reset_emulator
mkdir -p m2/vision m2/nlp m2/shared
# file order a, b, c holds q3, q1, q2: name order must decide, not reading order
doc nlp-q3 workspace=ws-nlp >m2/nlp/a.yaml
doc nlp-q1 workspace=ws-nlp >m2/nlp/b.yaml
doc nlp-q2 workspace=ws-nlp >m2/nlp/c.yaml
doc nlp-a0 >m2/nlp/0-invalid.yaml # first in name order, but invalid: it takes no place
for i in 1 2 3; do doc vis-q$i workspace=ws-vision >m2/vision/q$i.yaml; done
doc vis-q4 >m2/vision/q4.yaml
doc common-notes >m2/shared/notes.yaml
EXPECTED2="m2/nlp/0-invalid.yaml:1:1: error: workspace.id defaults to '0', which is not one of tenant nlp's workspaces (in $CONF): name one
m2/nlp/a.yaml:1:7: error: tenant nlp may have 2 instances (max_instances in $CONF): 'nlp-q3' is number 3 in name order and is not applied"

run_once once2 m2 "$T/state2"
nb_assert_eq 1 "$RC" "once with a tenant over its quota: exit status"
assert_diags "$T/once2.err.log" m2 "$EXPECTED2" "once (step 2)"
assert_inventory "common-notes 0 modelarts.vm.cpu.2u
nlp-q1 ws-nlp modelarts.vm.cpu.2u
nlp-q2 ws-nlp modelarts.vm.cpu.2u
vis-q1 ws-vision modelarts.vm.cpu.2u
vis-q2 ws-vision modelarts.vm.cpu.2u
vis-q3 ws-vision modelarts.vm.cpu.2u
vis-q4 0 modelarts.vm.cpu.2u" "instances in the emulator after step 2"
nb_emulator_stats >"$T/stats2.json"
nb_assert_eq "0 0 0" "$(per_name "$T/stats2.json" nlp-q3)" "nlp-q3 (over the quota): creates"
nb_assert_eq 7 "$(jq '.creates.requests' "$T/stats2.json")" "create requests"
nb_assert_file_no_match "$T/once2.out" '"nlp-q3"' "once's report (nlp-q3 is not desired)"
nb_assert_file_match "$T/once2.out" '^7 desired: 7 running, .*; 2 invalid manifest documents$' "once's summary"
status_json "$T/state2" >"$T/status2.json"
nb_assert_eq "" "$(rec "$T/status2.json" nlp-q3)" "nlp-q3's record (none)"
nb_assert_match '^accepted [0-9a-f-]{36} nlp$' "$(rec "$T/status2.json" nlp-q2)" "nlp-q2's record"

# ---- 3. one name in two tenants' trees ----
nb_step "3: vis-shared in vision/ and shared/: the prefix owner's document is applied, the copy is the error"
reset_emulator
mkdir -p m3/vision m3/shared
# shared/ is read before vision/: reading order must not decide
doc vis-shared workspace=ws-shared flavor=modelarts.vm.cpu.2u description="the shared copy" >m3/shared/copy.yaml
doc vis-shared workspace=ws-vision flavor=modelarts.vm.cpu.8u description="the vision original" >m3/vision/shared.yaml
doc common-notes >m3/shared/notes.yaml
EXPECTED3="m3/shared/copy.yaml:1:7: error: name 'vis-shared' belongs to tenant vision (name_prefix 'vis-'), which defines it at m3/vision/shared.yaml:1:7; this one is not applied"

run_once once3 m3 "$T/state3"
nb_assert_eq 1 "$RC" "once with a name in two tenants' trees: exit status"
assert_diags "$T/once3.err.log" m3 "$EXPECTED3" "once (step 3)"
assert_inventory "common-notes 0 modelarts.vm.cpu.2u
vis-shared ws-vision modelarts.vm.cpu.8u" "instances in the emulator after step 3"
nb_assert_eq "ws-vision modelarts.vm.cpu.8u the vision original" \
        "$(instance_in ws-vision vis-shared | jq -r '"\(.workspace) \(.flavor) \(.description)"')" "vis-shared as created"
nb_emulator_stats >"$T/stats3.json"
nb_assert_eq "1 1 0" "$(per_name "$T/stats3.json" vis-shared)" "vis-shared: creates"
status_json "$T/state3" >"$T/status3.json"
nb_assert_match '^accepted [0-9a-f-]{36} vision$' "$(rec "$T/status3.json" vis-shared)" "vis-shared's record"
nb_assert_match '^accepted [0-9a-f-]{36} shared$' "$(rec "$T/status3.json" common-notes)" "common-notes's record"

# ---- 4. no adoption across teams ----
nb_step "4: a 6301 for nlp-seeded, which lives in vision's workspace, is not adopted; in nlp's own, it is"
reset_emulator
# Names are global in the emulator (store.c: one live instance per name, ModelArts.6301),
# as in the cloud: a create of nlp-seeded in ws-nlp meets the instance in ws-vision.
seeded=$(seed 'name=nlp-seeded&workspace_id=ws-vision' | jq -r .id)
nb_assert_match '^[0-9a-f-]{36}$' "$seeded" "seeded nlp-seeded's id"
mine=$(seed 'name=nlp-mine&workspace_id=ws-nlp' | jq -r .id)
nb_assert_match '^[0-9a-f-]{36}$' "$mine" "seeded nlp-mine's id"
mkdir -p m4/vision m4/nlp
{
        doc nlp-seeded workspace=ws-nlp
        echo ---
        doc nlp-mine workspace=ws-nlp
} >m4/nlp/team.yaml
# a vision manifest in ws-vision: notebookd lists that workspace too, and sees nlp-seeded there
doc vis-here workspace=ws-vision >m4/vision/here.yaml

run_once once4 m4 "$T/state4"
nb_assert_eq 1 "$RC" "once with a name conflict across workspaces: exit status"
nb_assert_eq "" "$(diags_of "$T/once4.err.log" m4)" "diagnostics (none: the manifests are valid)"
nb_assert_file_match "$T/once4.out" '^conflict +"nlp-seeded"' "once's report for nlp-seeded"
nb_assert_file_no_match "$T/once4.out" "$seeded" "once's report (the seeded instance's id)"
nb_assert_file_match "$T/once4.out" "^adopted +\"nlp-mine\" $mine " "once's report for nlp-mine"
nb_assert_file_match "$T/once4.out" '^ok +"vis-here" ' "once's report for vis-here"
# the console shows an error's fields: the conflict's line names nlp's workspace and tenant
nb_assert_file_match "$T/once4.err.log" \
        '^notebookd: error: Notebook nlp-seeded: .*\[NOTEBOOK=nlp-seeded WORKSPACE_ID=ws-nlp .*TENANT=nlp\]$' \
        "the conflict's console line"
nb_emulator_stats >"$T/stats4.json"
nb_assert_eq "1 0 1" "$(per_name "$T/stats4.json" nlp-seeded)" "nlp-seeded: one create, answered 6301"
nb_assert_eq "0 0 0" "$(per_name "$T/stats4.json" nlp-mine)" "nlp-mine: creates (adopted)"
assert_inventory "nlp-mine ws-nlp modelarts.vm.cpu.2u
nlp-seeded ws-vision modelarts.vm.cpu.2u
vis-here ws-vision modelarts.vm.cpu.2u" "instances in the emulator after step 4"
nb_assert_eq "$seeded" "$(instance_in ws-vision nlp-seeded | jq -r .id)" "nlp-seeded in ws-vision (untouched)"
status_json "$T/state4" >"$T/status4.json"
nb_assert_eq "conflict null nlp" "$(rec "$T/status4.json" nlp-seeded)" "nlp-seeded's record"
nb_assert_eq "adopted $mine nlp" "$(rec "$T/status4.json" nlp-mine)" "nlp-mine's record"
nb_assert_eq 0 "$(jq --arg id "$seeded" '[.instances[] | select(.instance_id == $id)] | length' "$T/status4.json")" \
        "records carrying the seeded instance's id"
# blocked: a second run sends no create for it, and still adopts nothing
run_once once4b m4 "$T/state4"
nb_assert_eq 1 "$RC" "second once: exit status"
nb_emulator_stats >"$T/stats4b.json"
nb_assert_eq "1 0 1" "$(per_name "$T/stats4b.json" nlp-seeded)" "nlp-seeded after a second run: creates"
status_json "$T/state4" >"$T/status4b.json"
nb_assert_eq "conflict null nlp" "$(rec "$T/status4b.json" nlp-seeded)" "nlp-seeded's record after a second run"

# ---- 5. TENANT= in the journal ----
nb_step "5: every journal entry with NOTEBOOK= carries its TENANT="
reset_emulator
run_once once5 m2 "$T/state5" --log-target=journal
nb_assert_eq 1 "$RC" "once on the step-2 tree (journal): exit status"
nb_journal_json SYSLOG_IDENTIFIER=notebookd >"$T/journal5.json"
# the tenant each name must carry: by its prefix in this tree (shared/ holds common-*)
jq -r 'select(.NOTEBOOK != null) | "\(.NOTEBOOK) \(.TENANT // "-")"' "$T/journal5.json" | LC_ALL=C sort -u >"$T/tenant-fields5"
nb_assert_eq "common-notes shared
nlp-q1 nlp
nlp-q2 nlp
vis-q1 vision
vis-q2 vision
vis-q3 vision
vis-q4 vision" "$(cat "$T/tenant-fields5")" "NOTEBOOK and TENANT pairs in the journal"
CREATE_ACCEPTED=$(nb_message_ids | awk '$1 == "MESSAGE_CREATE_ACCEPTED" { print $2 }')
nb_assert_match '^[0-9a-f]{32}$' "$CREATE_ACCEPTED" "MESSAGE_CREATE_ACCEPTED"
for pair in vis-q1:vision nlp-q1:nlp common-notes:shared; do
        e=$(jq -c --arg n "${pair%%:*}" --arg id "$CREATE_ACCEPTED" 'select(.NOTEBOOK == $n and .MESSAGE_ID == $id)' "$T/journal5.json")
        nb_assert_eq 1 "$(printf '%s\n' "$e" | grep -c . || true)" "create-accepted entries for ${pair%%:*}"
        nb_assert_eq "${pair#*:}" "$(jq -r .TENANT <<<"$e")" "TENANT of ${pair%%:*}'s create-accepted entry"
done

# A name that left the tree: its "no longer desired" entry still carries its tenant's
# name (vis-q4 by its prefix; common-notes, of shared/ which has no prefix, only by what
# its record keeps). On a copy of the state, so that step 6 sees step 5's.
cp -a "$T/state5" "$T/state5-gone"
cp -a m2 m5
rm m5/vision/q4.yaml m5/shared/notes.yaml
run_once once5-gone m5 "$T/state5-gone" --log-target=journal
nb_assert_eq 1 "$RC" "once with two names gone from the tree (journal): exit status"
GONE=$(nb_message_ids | awk '$1 == "MESSAGE_GONE" { print $2 }')
nb_assert_match '^[0-9a-f]{32}$' "$GONE" "MESSAGE_GONE"
nb_journal_json SYSLOG_IDENTIFIER=notebookd MESSAGE_ID="$GONE" >"$T/journal5-gone.json"
nb_assert_eq "common-notes,vis-q4" "$(jq -rs '[.[].NOTEBOOK] | unique | join(",")' "$T/journal5-gone.json")" \
        "names with a no-longer-desired entry"
nb_assert_eq vision "$(jq -rs '[.[] | select(.NOTEBOOK == "vis-q4") | .TENANT // "-"] | unique | join(",")' "$T/journal5-gone.json")" \
        "TENANT of vis-q4's no-longer-desired entry"
# A gone name whose tenant has no name_prefix: TENANT= comes from its record.
nb_assert_eq shared "$(jq -rs '[.[] | select(.NOTEBOOK == "common-notes") | .TENANT // "-"] | unique | join(",")' "$T/journal5-gone.json")" \
        "TENANT of common-notes's no-longer-desired entry"

# ---- 6. plan and status ----
nb_step "6: plan and status: the TENANT column, --tenant, and \"tenant\" in --json"
nb_cli() { # OUT_NAME ARGS...: RC, stdout in $T/OUT_NAME.out, stderr in $T/OUT_NAME.err.log
        local name=$1
        shift
        RC=0
        "$NOTEBOOKD" -c "$CONF" -m m2 -s "$T/state5" "$@" >"$T/$name.out" 2>"$T/$name.err.log" || RC=$?
}
# plan: the tree of steps 2 and 5 has invalid manifests: exit 1, every valid name planned
nb_cli plan plan
nb_assert_eq 1 "$RC" "plan (invalid manifests in the tree): exit status"
nb_assert_file_match "$T/plan.out" '^ACTION +TENANT +NAME +DETAIL$' "plan's header"
for pair in vis-q1:vision vis-q4:vision nlp-q1:nlp nlp-q2:nlp common-notes:shared; do
        nb_assert_file_match "$T/plan.out" "^ok +${pair#*:} +${pair%%:*} +[0-9a-f-]{36} RUNNING\$" "plan's row for ${pair%%:*}"
done
nb_assert_file_no_match "$T/plan.out" 'nlp-q3|nlp-a0' "plan (names not applied)"
nb_cli plan-nlp plan --tenant nlp
nb_assert_eq 1 "$RC" "plan --tenant nlp: exit status"
nb_assert_eq "nlp nlp-q1
nlp nlp-q2" "$(awk 'NR > 1 && $1 == "ok" { print $2, $3 }' "$T/plan-nlp.out")" "plan --tenant nlp: rows"
nb_assert_file_no_match "$T/plan-nlp.out" 'vis-|common-' "plan --tenant nlp"
nb_cli plan-nope plan --tenant nope
nb_assert_eq 2 "$RC" "plan --tenant nope: exit status"
nb_assert_file_match "$T/plan-nope.err.log" 'no such tenant' "plan --tenant nope: message"
nb_cli plan-json plan --json
nb_assert_eq 1 "$RC" "plan --json: exit status"
nb_assert_eq "common-notes shared,nlp-q1 nlp,nlp-q2 nlp,vis-q1 vision,vis-q2 vision,vis-q3 vision,vis-q4 vision" \
        "$(jq -r '[.actions[] | "\(.name) \(.tenant)"] | sort | join(",")' "$T/plan-json.out")" "plan --json: names and tenants"
nb_cli plan-json-nlp plan --json --tenant nlp
nb_assert_eq "nlp-q1 nlp,nlp-q2 nlp" \
        "$(jq -r '[.actions[] | "\(.name) \(.tenant)"] | sort | join(",")' "$T/plan-json-nlp.out")" "plan --json --tenant nlp"
nb_assert_eq 2 "$(jq '.counts.ok' "$T/plan-json-nlp.out")" "plan --json --tenant nlp: ok count"

nb_cli status status
nb_assert_eq 0 "$RC" "status: exit status"
nb_assert_file_match "$T/status.out" '^TENANT +NAME +INSTANCE-ID +STATUS +RESULT +AGE$' "status's header"
for pair in vis-q1:vision vis-q4:vision nlp-q1:nlp nlp-q2:nlp common-notes:shared; do
        nb_assert_file_match "$T/status.out" "^${pair#*:} +${pair%%:*} +[0-9a-f-]{36} +RUNNING +accepted " "status's row for ${pair%%:*}"
done
nb_cli status-nlp status --tenant nlp
nb_assert_eq 0 "$RC" "status --tenant nlp: exit status"
nb_assert_eq "nlp nlp-q1
nlp nlp-q2" "$(awk 'NR > 1 && $4 == "RUNNING" { print $1, $2 }' "$T/status-nlp.out")" "status --tenant nlp: rows"
nb_assert_file_no_match "$T/status-nlp.out" 'vis-|common-' "status --tenant nlp"
nb_cli status-nope status --tenant nope
nb_assert_eq 2 "$RC" "status --tenant nope: exit status"
nb_assert_file_match "$T/status-nope.err.log" 'no such tenant' "status --tenant nope: message"
nb_cli status-json status --json
nb_assert_eq "common-notes shared,nlp-q1 nlp,nlp-q2 nlp,vis-q1 vision,vis-q2 vision,vis-q3 vision,vis-q4 vision" \
        "$(jq -r '[.instances[] | "\(.name) \(.tenant)"] | sort | join(",")' "$T/status-json.out")" "status --json: names and tenants"
nb_cli status-json-nlp status --json --tenant nlp
nb_assert_eq "nlp-q1 nlp,nlp-q2 nlp" \
        "$(jq -r '[.instances[] | "\(.name) \(.tenant)"] | sort | join(",")' "$T/status-json-nlp.out")" "status --json --tenant nlp"

# ---- 7. check -c, as CI runs it ----
nb_step "7: check -c CONF DIR: the same diagnostics as once, exit 1"
for step in 1 2 3; do
        rc=0
        "$NOTEBOOKD" -c "$CONF" check "m$step" >"$T/check$step.out" 2>&1 || rc=$?
        nb_assert_eq 1 "$rc" "check -c on m$step: exit status"
        nb_assert_eq "$(diags_of "$T/once$step.err.log" "m$step")" "$(diags_of "$T/check$step.out" "m$step")" \
                "check's diagnostics for m$step against once's"
done
assert_diags "$T/check1.out" m1 "$EXPECTED1" "check (step 1)"
nb_assert_file_match "$T/check1.out" ' 9 errors, ' "check's summary"
rc=0
"$NOTEBOOKD" -c "$CONF" check m4 >"$T/check4.out" 2>&1 || rc=$?
nb_assert_eq 0 "$rc" "check -c on the valid m4: exit status"

# ---- 8. prune: one team's broken tree never holds another team's deletions ----
nb_step "8: prune holds only the tenant whose part of the tree is not whole"
reset_emulator
cp "$CONF" "$T/config.saved"
printf 'prune: true\nprune_grace: 1m\n' >>"$CONF"
mkdir -p m8/vision m8/nlp
for n in vis-p1 vis-p2; do doc "$n" >"m8/vision/$n.yaml"; done
for n in nlp-p1 nlp-p2; do doc "$n" workspace=ws-nlp >"m8/nlp/$n.yaml"; done
run_once once8a m8 s8 --wait
nb_assert_eq 0 "$RC" "once (m8, all four): exit status"
assert_inventory "nlp-p1 ws-nlp modelarts.vm.cpu.2u
nlp-p2 ws-nlp modelarts.vm.cpu.2u
vis-p1 0 modelarts.vm.cpu.2u
vis-p2 0 modelarts.vm.cpu.2u" "m8 created"
# each team removes one; nlp also breaks a manifest of its own
rm m8/vision/vis-p2.yaml m8/nlp/nlp-p2.yaml
printf 'name: [\n' >m8/nlp/broken.yaml
run_once once8b m8 s8
nb_assert_eq 1 "$RC" "once (m8, nlp broken): exit status"
marks() { sqlite3 s8/notebookd.db "SELECT name || ' ' || (COALESCE(undesired_since_ms, 0) > 0) FROM instances WHERE name LIKE '%-p2' ORDER BY name"; }
nb_assert_eq "nlp-p2 0
vis-p2 1" "$(marks)" "absence marks: vision's starts its grace, nlp's broken part starts none"
sqlite3 s8/notebookd.db "UPDATE instances SET undesired_since_ms = undesired_since_ms - 120000 WHERE undesired_since_ms > 0"
run_once once8c m8 s8 --wait
nb_assert_eq 1 "$RC" "once (m8, past the grace): exit status (nlp's manifest is still invalid)"
assert_inventory "nlp-p1 ws-nlp modelarts.vm.cpu.2u
nlp-p2 ws-nlp modelarts.vm.cpu.2u
vis-p1 0 modelarts.vm.cpu.2u" "vision's absent instance deleted, nlp's kept"
nb_assert_file_match "$T/once8c.err.log" 'Deleting notebook vis-p2 \(prune\).*TENANT=vision' "the deletion, with its tenant"
nb_assert_file_no_match "$T/once8c.err.log" 'Deleting notebook nlp-p2' "nlp's deletion"
cp "$T/config.saved" "$CONF"

nb_step "ok"
