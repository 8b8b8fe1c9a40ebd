#!/usr/bin/env bash
# notebookd against an emulator set up like today's ModelArts:
#   A. today's profiles, a bare-metal and an Ascend flavor and a pool converge;
#   B. an instance made outside notebookd in workspace ws-a is adopted, not created
#      (listings with total_count as a string);
#   C. a new instance in ws-a is created there and followed to RUNNING;
#   D. a name taken by another IAM user's instance (hidden from our listings) is a
#      conflict: reported, exit 1, and not sent again until the manifest changes;
#   E. a create denied by an IAM policy (403 ModelArts.0112) is refused alone: every
#      other create goes through, and once exits 1, not 2;
#   F. a frozen account (ModelArts.6326) is reported plainly, once says "frozen", and the
#      daemon's STATUS= says creates are paused and counts a manifest added meanwhile as
#      waiting, not sent.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=CLOUDTODAYAK00000001
SK=cloudTodaySecretKey0123456789abcdefghiJK
TOKEN=cloud-today-control-token
PROJECT=0a1b2c3d4e5f60718293a4b5c6d7e8f9
: >"$T/config.yaml"

start_emulator() { # EXTRA ARGS...
        nb_start_emulator --ak "$AK" --sk "$SK" --token "$TOKEN" --project-id "$PROJECT" --log \
                --create-delay-ms 300 --seed 7 "$@"
}
status_json() { "$NOTEBOOKD" -c "$T/config.yaml" -s "$1" --json status; }
rec() { # STATUS_FILE NAME -> "result instance_id"
        jq -r --arg n "$2" '.instances[] | select(.name == $n) | "\(.result) \(.instance_id)"' "$1"
}
creates_for() { # STATS_FILE NAME -> create requests that reached the emulator for NAME
        jq -r --arg n "$2" '.creates.by_name[$n].requests // 0' "$1"
}
seed() { # QUERY: an instance made outside notebookd; prints its JSON
        curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/seed?$1"
}
manifest() { # FILE NAME [EXTRA YAML LINES...]
        local f=$1 n=$2
        shift 2
        printf 'name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' "$n" >"$f"
        local l
        for l in "$@"; do printf '%s\n' "$l" >>"$f"; done
}
# The instance as the emulator's own listing of WORKSPACE shows it (show_self=false: all).
listed() { # WORKSPACE NAME -> "id status"
        curl -fsS -H "X-Auth-Token: $TOKEN" \
                "$NB_EMULATOR_URL/v1/$PROJECT/demanager/instances?de_type=Notebook&show_self=false&workspace_id=$1" |
                jq -r --arg n "$2" '.instances[] | select(.name == $n) | "\(.id) \(.status)"'
}

# ---- A. today's catalog ----
nb_step "A: today's profiles and flavors, and a pool, converge"
start_emulator
M=$T/a
mkdir -p "$M"
cat >"$M/today.yaml" <<'EOF'
name: today-cpu
profile_id: Multi-Engine 1.0 (python3)-cpu
flavor: modelarts.vm.cpu.8u
spec:
  storage:
    type: evs
---
name: today-bm
profile_id: Multi-Engine 1.0 (python3)-gpu
flavor: modelarts.bm.gpu.v100NV32
spec:
  storage:
    type: evs
---
name: today-ascend
profile_id: Ascend-Power-Engine 1.0(python3)
flavor: modelarts.kat1.xlarge
spec:
  storage:
    type: evs
pool:
  id: pool-ascend-01
---
name: today-multi
profile_id: Multi-Engine 2.0 (python3)
flavor: modelarts.vm.gpu.v100
spec:
  storage:
    type: obs
    location:
      path: team-bucket/notebooks/
ai_project:
  id: default-ai-project
EOF
"$NOTEBOOKD" check "$M" >"$T/check-a.log" 2>&1 || nb_fail "check refused today's values: $(cat "$T/check-a.log")"
rc=0
nb_once "$M" "$T/state-a" --wait --timeout 120 >"$T/once-a.log" 2>&1 || rc=$?
nb_assert_eq 0 "$rc" "once with today's catalog: exit status"
nb_emulator_stats >"$T/stats-a.json"
nb_assert_eq 4 "$(jq '.creates.created' "$T/stats-a.json")" "instances created"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats-a.json")" "protocol violations"
nb_assert_eq 4 "$(jq '.instances.by_status.RUNNING // 0' "$T/stats-a.json")" "RUNNING instances"

# ---- B and C. workspace ws-a ----
nb_step "B, C: an instance someone made in ws-a is adopted; a new one in ws-a is followed to RUNNING"
# and the listings say total_count as a string, as some deployments do
start_emulator --total-count-string
M=$T/bc
mkdir -p "$M"
theirs=$(seed 'name=ws-theirs&workspace_id=ws-a&owner=self&status=RUNNING' | jq -r .id)
nb_assert_match '^[0-9a-f-]{36}$' "$theirs" "seeded instance id"
manifest "$M/theirs.yaml" ws-theirs 'workspace:' '  id: ws-a'
manifest "$M/ours.yaml" ws-ours 'workspace:' '  id: ws-a'
rc=0
nb_once "$M" "$T/state-bc" --wait --timeout 120 >"$T/once-bc.log" 2>&1 || rc=$?
nb_assert_eq 0 "$rc" "once in workspace ws-a: exit status"
nb_emulator_stats >"$T/stats-bc.json"
nb_assert_eq 0 "$(creates_for "$T/stats-bc.json" ws-theirs)" "creates sent for the instance that existed in ws-a"
nb_assert_eq 1 "$(creates_for "$T/stats-bc.json" ws-ours)" "creates sent for the new one"
status_json "$T/state-bc" >"$T/status-bc.json"
nb_assert_eq "adopted $theirs" "$(rec "$T/status-bc.json" ws-theirs)" "ws-theirs record"
ours=$(jq -r '.instances[] | select(.name == "ws-ours") | .instance_id' "$T/status-bc.json")
nb_assert_eq "$ours RUNNING" "$(listed ws-a ws-ours)" "ws-ours as ws-a's listing shows it"
nb_assert_eq RUNNING "$(jq -r '.instances[] | select(.name == "ws-ours") | .status' "$T/status-bc.json")" \
        "ws-ours status recorded by following it"
nb_assert_eq "" "$(listed 0 ws-ours)" "ws-ours in workspace 0 (it must not be there)"
nb_assert_eq "ws-a ws-a" "$(jq -r '[.instances[] | select(.name | startswith("ws-")) | .workspace_id] | join(" ")' \
        "$T/status-bc.json")" "recorded workspaces"
# every listing named its workspace, and both were listed
grep -c 'workspace_id=ws-a' "$T/emulator-2.log" >/dev/null || nb_fail "no listing of workspace ws-a"
# A second run with nothing to do: still nothing created, exit 0.
rc=0
nb_once "$M" "$T/state-bc" --timeout 60 >"$T/once-bc2.log" 2>&1 || rc=$?
nb_assert_eq 0 "$rc" "second once: exit status"
nb_emulator_stats >"$T/stats-bc2.json"
nb_assert_eq 1 "$(jq '.creates.requests' "$T/stats-bc2.json")" "create requests after the second run"

# ---- D. a name taken by someone we cannot see ----
nb_step "D: 6301 for a name no listing shows is a conflict, reported and not hammered"
start_emulator
M=$T/d
mkdir -p "$M"
seed 'name=taken-by-other&owner=other' >/dev/null
manifest "$M/taken.yaml" taken-by-other
manifest "$M/free.yaml" free-name
rc=0
nb_once "$M" "$T/state-d" --timeout 120 >"$T/once-d.log" 2>&1 || rc=$?
nb_assert_eq 1 "$rc" "once with an invisible name conflict: exit status"
nb_assert_file_match "$T/once-d.log" '^conflict +"taken-by-other"' "once's report"
nb_assert_file_match "$T/once-d.log" 'cannot show.*rename it, or ask the owner' "the conflict's message"
nb_emulator_stats >"$T/stats-d.json"
nb_assert_eq 1 "$(creates_for "$T/stats-d.json" taken-by-other)" "creates sent for the taken name"
nb_assert_eq 1 "$(creates_for "$T/stats-d.json" free-name)" "creates sent for the free name"
status_json "$T/state-d" >"$T/status-d.json"
nb_assert_eq "conflict null" "$(rec "$T/status-d.json" taken-by-other)" "taken-by-other record"
rc=0
nb_once "$M" "$T/state-d" --timeout 60 >"$T/once-d2.log" 2>&1 || rc=$?
nb_assert_eq 1 "$rc" "second once: exit status"
nb_emulator_stats >"$T/stats-d2.json"
nb_assert_eq 1 "$(creates_for "$T/stats-d2.json" taken-by-other)" "creates for the taken name after a second run"
# A changed manifest is a new request and is sent (and meets the same 6301).
manifest "$M/taken.yaml" taken-by-other 'description: second try'
rc=0
nb_once "$M" "$T/state-d" --timeout 60 >"$T/once-d3.log" 2>&1 || rc=$?
nb_assert_eq 1 "$rc" "once after the manifest changed: exit status"
nb_emulator_stats >"$T/stats-d3.json"
nb_assert_eq 2 "$(creates_for "$T/stats-d3.json" taken-by-other)" "creates for the taken name after the change"

# ---- E. denied by an IAM policy ----
nb_step "E: a create denied by an IAM policy is refused alone; once exits 1, not 2"
start_emulator --inject-error 'ModelArts.0112:denied-*'
M=$T/e
mkdir -p "$M"
for i in $(seq 1 10); do manifest "$M/nb-$i.yaml" "allowed-$i"; done
manifest "$M/denied.yaml" denied-1
rc=0
nb_once "$M" "$T/state-e" --timeout 120 >"$T/once-e.log" 2>&1 || rc=$?
nb_assert_eq 1 "$rc" "once with a policy-denied create: exit status"
nb_assert_file_match "$T/once-e.log" '^rejected +"denied-1".*ModelArts\.0112' "once's report for the denied name"
nb_assert_file_match "$T/once-e.log" 'IAM policy denies' "the denial's message"
nb_assert_file_no_match "$T/once-e.log" 'Authentication failed|fix them' "an authentication failure (there is none)"
nb_emulator_stats >"$T/stats-e.json"
nb_assert_eq 10 "$(jq '.creates.created' "$T/stats-e.json")" "instances created besides the denied one"
nb_assert_eq 1 "$(creates_for "$T/stats-e.json" denied-1)" "creates sent for the denied name"
rc=0
nb_once "$M" "$T/state-e" --timeout 60 >"$T/once-e2.log" 2>&1 || rc=$?
nb_assert_eq 1 "$rc" "second once: exit status"
nb_emulator_stats >"$T/stats-e2.json"
nb_assert_eq 1 "$(creates_for "$T/stats-e2.json" denied-1)" "creates for the denied name after a second run"

# ---- F. a frozen account ----
nb_step "F: a frozen account: once says so, the daemon's STATUS= says creates are paused"
start_emulator --inject-error 'ModelArts.6326:*'
M=$T/f
mkdir -p "$M"
manifest "$M/frozen.yaml" frozen-1
rc=0
nb_once "$M" "$T/state-f" --timeout 60 >"$T/once-f.log" 2>&1 || rc=$?
nb_assert_eq 1 "$rc" "once on a frozen account: exit status"
nb_assert_file_match "$T/once-f.log" '^frozen +"frozen-1"' "once's report"
nb_assert_file_match "$T/once-f.log" 'account is frozen' "the plain message"
nb_assert_file_match "$T/once-f.log" '^1 desired: 0 running, 0 creating, 0 waiting, 0 failed, 0 rejected, 1 retrying;' \
        "once's tally (the engine's)"

nb_start_journald
nb_start_notify
manifest "$M/frozen-2.yaml" frozen-2
nb_spawn daemon env -u CREDENTIALS_DIRECTORY HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
        "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$T/state-f-daemon" -e "$NB_EMULATOR_URL" -p "$PROJECT" \
        --log-target=journal run
daemon=$NB_PID
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=Paused: account frozen \(ModelArts\.6326\), next try in [0-9]+s' \
        "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_wait_for_journal '"MESSAGE_ID":"77fbcd41b2ce4e4d930b5111cabd623e"' 1
# said once per freeze, not once per name
nb_journal_json MESSAGE_ID=77fbcd41b2ce4e4d930b5111cabd623e >"$T/frozen.json"
nb_assert_eq 1 "$(wc -l <"$T/frozen.json")" "account-frozen entries"
# a manifest added during the freeze is not sent: it waits, and STATUS= counts it so
manifest "$M/frozen-3.yaml" frozen-3
nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=Paused: account frozen .*; 3 desired, 0 running, 0 creating, 1 waiting, 0 failed, 0 rejected, 2 retrying' \
        "$NB_TIMEOUT" 1 "$daemon" >/dev/null
nb_emulator_stats >"$T/stats-f.json"
nb_assert_eq 0 "$(creates_for "$T/stats-f.json" frozen-3)" "creates sent for a manifest added during the freeze"
nb_stop "$daemon"

nb_step "ok"
