#!/usr/bin/env bash
# `notebookd run` and its signals:
#   1. SIGHUP: RELOADING=1 then READY=1 in the notify log, a RELOAD entry, and the new
#      config in force (it names another manifests tree: that one is reconciled and
#      watched);
#   2. SIGHUP with a broken config: CONFIG_INVALID, RELOADING=1 then READY=1 all the
#      same, the daemon keeps running with the old config and still reconciles a file
#      added afterwards;
#   2b. SIGHUP adding flavors: to the config: the unchanged tree is judged again, a
#      manifest outside the list is refused at its FILE:LINE:COLUMN and not sent; the
#      list removed by another SIGHUP, it is created;
#   3. SIGTERM while requests are in flight: many manifests, every API request held by
#      the emulator (--latency-ms), the emulator frozen (SIGSTOP) once creates are out so
#      that they cannot finish before the signal; STOPPING=1, a STOPPING entry counting
#      them, the emulator thawed, exit 0. Afterwards `notebookd once --wait` converges
#      with exactly one instance per name: nothing lost, nothing duplicated;
#   4. SIGTERM while every create's answer is held past the stop deadline (10 s): exit 0
#      all the same; the instances made but never answered are adopted by the next run,
#      not created twice.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=DAEMONSIGNALSAK00001
SK=daemonSignalsSecretKey0123456789abcdeFG
PROJECT=2a2b2c2d2e2f30313233343536373839
N_MANY=60
N_LATE=20
eval "$(nb_message_ids | sed 's/^\([A-Z_]*\) \([0-9a-f]*\)$/\1=\2/')"

nb_start_journald
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 100
nb_start_notify

# ---- local helpers ----
M=$T/manifests
S=$T/state
djournal() { nb_journal_json _PID="$DAEMON_PID" "$@"; }


write_config() { # on stdout
        cat <<-EOF
	endpoint: $NB_EMULATOR_URL
	project_id: $PROJECT
	manifests: $M
	state_dir: $S
	resync_interval: 10m
	EOF
}

start_daemon() {
        nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
                -u HUAWEICLOUD_SDK_PROJECT_ID CREDENTIALS_DIRECTORY="$T/creds" \
                "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
        DAEMON_PID=$NB_PID
}

# One notebook created by the daemon and RUNNING.
wait_created() { # NAME
        nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" NOTEBOOK="$1" _PID="$DAEMON_PID" >/dev/null
        nb_wait_for_journal '"STATUS":"RUNNING"' 1 MESSAGE_ID="$MESSAGE_STATUS_CHANGED" NOTEBOOK="$1" _PID="$DAEMON_PID" >/dev/null
}

# `notebookd once --wait`, then: N names, exactly one instance made for each, never a
# duplicate create, all RUNNING, recorded, no open intent.
assert_once_converges() { # N WHAT
        local rc=0 bad
        env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                CREDENTIALS_DIRECTORY="$T/creds" timeout 300 "$NOTEBOOKD" -c "$T/config.yaml" --log-target=console \
                --wait --timeout 120 once >"$T/once.stdout.log" 2>"$T/once.stderr.log" || rc=$?
        nb_assert_eq 0 "$rc" "$2: once --wait exit status"
        nb_assert_file_no_match "$T/once.stderr.log" 'Sanitizer|runtime error' "$2: once output (sanitizers)"
        nb_emulator_stats >"$T/stats.json"
        nb_assert_eq "$1" "$(jq '.creates.by_name | length' "$T/stats.json")" "$2: names created"
        bad=$(jq -r '.creates.by_name | to_entries[] | select(.value.created != 1 or .value.duplicates != 0) | "\(.key) \(.value)"' "$T/stats.json")
        [ -z "$bad" ] || nb_fail "$2: not exactly one instance per name: $bad"
        nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats.json")" "$2: duplicate creates"
        nb_assert_eq "$1" "$(jq '.instances.live' "$T/stats.json")" "$2: live instances"
        nb_assert_eq "$1" "$(jq '.instances.by_status.RUNNING // 0' "$T/stats.json")" "$2: RUNNING instances"
        nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats.json")" \
                "$2: protocol violations ($(jq -c '.recent_violations' "$T/stats.json"))"
        "$NOTEBOOKD" -c "$T/config.yaml" --json status >"$T/status.json"
        nb_assert_eq "$1" "$(jq '[.instances[] | select(.status == "RUNNING")] | length' "$T/status.json")" "$2: RUNNING records"
        nb_assert_eq 0 "$(jq '.open_intents | length' "$T/status.json")" "$2: open create intents"
}

# The number of the first notify-log line after line K matching ERE (empty if none).
notify_line_after() { # K ERE
        # the ERE through the environment: awk -v would turn its \\ into \
        RE=$2 awk -v k="$1" 'NR > k && $0 ~ ENVIRON["RE"] { print NR; exit }' "$NB_NOTIFY_LOG"
}

# Notify-log lines up to line K matching ERE.
notify_count() { # K ERE
        head -n "$1" "$NB_NOTIFY_LOG" | grep -cE -- "$2" || true
}

READY_RE='(^| |\\n)READY=1'

# After line K of the notify log: RELOADING=1, then READY=1, nothing else in between but
# status updates (no READY=1 early, no STOPPING=1).
assert_reload_notified() { # K WHAT
        local rel rdy between
        nb_wait_for_line "$NB_NOTIFY_LOG" 'RELOADING=1' "$NB_TIMEOUT" $(($(notify_count "$1" 'RELOADING=1') + 1)) "$DAEMON_PID" >/dev/null
        rel=$(notify_line_after "$1" 'RELOADING=1')
        [ -n "$rel" ] || nb_fail "$2: no RELOADING=1 after line $1 of the notify log"
        nb_wait_for_line "$NB_NOTIFY_LOG" "$READY_RE" "$NB_TIMEOUT" $(($(notify_count "$rel" "$READY_RE") + 1)) "$DAEMON_PID" >/dev/null
        rdy=$(notify_line_after "$rel" "$READY_RE")
        [ -n "$rdy" ] || nb_fail "$2: no READY=1 after RELOADING=1 (line $rel)"
        between=$(awk -v a="$rel" -v b="$rdy" 'NR > a && NR < b' "$NB_NOTIFY_LOG")
        if grep -qE 'READY=1|STOPPING=1' <<<"$between"; then
                nb_fail "$2: READY=1 or STOPPING=1 between RELOADING=1 (line $rel) and READY=1 (line $rdy)"
        fi
        nb_step "$2: RELOADING=1 at line $rel of the notify log, READY=1 at line $rdy"
}

nb_write_creds "$AK" "$SK"
mkdir -p "$M"
nb_write_manifest "$M/s-one.yaml" s-one
write_config >"$T/config.yaml"

start_daemon
nb_wait_for_line "$NB_NOTIFY_LOG" "$READY_RE" "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null
wait_created s-one

# ---- 1. SIGHUP ----
# The new config names another manifests tree (the old one plus s-moved): the reload
# must read it, reconcile it and watch it.
nb_step "SIGHUP: RELOADING=1, then READY=1, a RELOAD entry, the new config in force"
cp -a "$M" "$T/manifests2"
M=$T/manifests2
nb_write_manifest "$M/s-moved.yaml" s-moved
write_config >"$T/config.yaml"
k=$(wc -l <"$NB_NOTIFY_LOG")
kill -HUP "$DAEMON_PID"
assert_reload_notified "$k" "reload"
nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_RELOAD" _PID="$DAEMON_PID" >/dev/null
kill -0 "$DAEMON_PID" 2>/dev/null || nb_fail "the daemon exited on SIGHUP"
nb_assert_eq 0 "$(djournal MESSAGE_ID="$MESSAGE_CONFIG_INVALID" | wc -l)" "CONFIG_INVALID entries after a good reload"
wait_created s-moved # only in the new tree
nb_write_manifest "$M/s-after-reload.yaml" s-after-reload # the new tree is watched
wait_created s-after-reload
nb_assert_eq 1 "$(nb_emulator_stats | jq '.creates.by_name["s-one"].created')" "s-one created once across the reload"
nb_assert_eq 0 "$(nb_emulator_stats | jq '.creates.duplicates')" "duplicate creates across the reload"

# ---- 2. SIGHUP with a broken config ----
nb_step "SIGHUP with a broken config: CONFIG_INVALID, the old config stays in force"
cp "$T/config.yaml" "$T/config.good"
{
        write_config
        echo "resync_intervall: 5m" # line 6, column 1: an unknown key
} >"$T/config.yaml"
k=$(wc -l <"$NB_NOTIFY_LOG")
kill -HUP "$DAEMON_PID"
assert_reload_notified "$k" "reload with a broken config"
e=$(nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_CONFIG_INVALID" _PID="$DAEMON_PID")
nb_assert_eq 3 "$(jq -r .PRIORITY <<<"$e")" "CONFIG_INVALID PRIORITY"
nb_assert_eq "$T/config.yaml" "$(jq -r .CONFIG_FILE <<<"$e")" "CONFIG_INVALID CONFIG_FILE"
nb_assert_eq 2 "$(djournal MESSAGE_ID="$MESSAGE_RELOAD" | wc -l)" "RELOAD entries"
# Where the config is wrong reaches the journal too: an entry pointing at line 6.
djournal CONFIG_FILE="$T/config.yaml" | jq -r '"\(.CONFIG_LINE // "-"):\(.CONFIG_COLUMN // "-") \(.MESSAGE)"' >"$T/config-diags"
nb_assert_file_match "$T/config-diags" '^6:1 .*resync_intervall' "the config's diagnostic with its position"
kill -0 "$DAEMON_PID" 2>/dev/null || nb_fail "the daemon exited on a broken config at SIGHUP"
nb_write_manifest "$M/s-after-bad-reload.yaml" s-after-bad-reload
wait_created s-after-bad-reload
mv "$T/config.good" "$T/config.yaml"

# ---- 2b. SIGHUP with profiles:/flavors: ----
# The same manifests tree under new rules: every file is judged again (none of them
# changed), a manifest outside flavors: is refused at its position and not sent; the
# rules lifted by the next reload, it is created.
nb_step "SIGHUP adding flavors: a manifest outside it refused, not sent; lifted, it is created"
cp "$T/config.yaml" "$T/config.good"
{
        write_config
        printf 'flavors: ["modelarts.vm.cpu.2u"]\n'
} >"$T/config.yaml"
printf 'name: s-policy\nprofile_id: Python3\nflavor: modelarts.vm.cpu.8u\nspec:\n  storage:\n    type: evs\n' \
        >"$T/s-policy.yaml"
k=$(wc -l <"$NB_NOTIFY_LOG")
kill -HUP "$DAEMON_PID"
assert_reload_notified "$k" "reload with flavors:"
mv "$T/s-policy.yaml" "$M/s-policy.yaml"
e=$(nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_MANIFEST_INVALID" CONFIG_FILE="$M/s-policy.yaml" _PID="$DAEMON_PID")
nb_assert_eq "3:9" "$(jq -r '"\(.CONFIG_LINE):\(.CONFIG_COLUMN)"' <<<"$e")" "the forbidden flavor's position"
nb_assert_match "flavor 'modelarts\\.vm\\.cpu\\.8u' is not allowed by 'flavors' in $T/config\\.yaml" \
        "$(jq -r .MESSAGE <<<"$e")" "the forbidden flavor's message"
# a pass that creates a manifest added after it would have sent s-policy too
nb_write_manifest "$M/s-policy-ok.yaml" s-policy-ok
wait_created s-policy-ok
nb_assert_eq 0 "$(nb_emulator_stats | jq '.creates.by_name["s-policy"].requests // 0')" "s-policy not sent"
mv "$T/config.good" "$T/config.yaml"
k=$(wc -l <"$NB_NOTIFY_LOG")
kill -HUP "$DAEMON_PID"
assert_reload_notified "$k" "reload without flavors:"
wait_created s-policy

# ---- 3. SIGTERM with requests in flight ----
nb_step "SIGTERM with requests in flight: STOPPING=1, exit 0"
nb_stop "$DAEMON_PID" TERM # the first daemon's part is done; a fresh one for this
nb_assert_eq 0 "$NB_STATUS" "exit status of the first daemon"
nb_assert_file_no_match "$T/daemon.log" 'Sanitizer|runtime error' "daemon output (sanitizers)"
nb_emulator_config latency_ms=2000
for i in $(seq 1 "$N_MANY"); do
        nb_write_manifest "$M/many-$i.yaml" "many-$i"
done
n_all=$((N_MANY + 6))
k=$(wc -l <"$NB_NOTIFY_LOG")
n_ready=$(notify_count "$k" "$READY_RE")
start_daemon
nb_wait_for_line "$NB_NOTIFY_LOG" "$READY_RE" "$NB_TIMEOUT" $((n_ready + 1)) "$DAEMON_PID" >/dev/null
nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_CREATE_SENT" _PID="$DAEMON_PID" >/dev/null
# Creates are out, each held 2 s by the emulator; freezing it keeps them (and whatever
# the daemon sends next) unanswered until the daemon has been told to stop.
kill -STOP "$NB_EMULATOR_PID"
thawed=0
thaw() { [ "$thawed" = 1 ] || { kill -CONT "$NB_EMULATOR_PID" 2>/dev/null; thawed=1; }; }
nb_at_exit thaw
kill -TERM "$DAEMON_PID"
nb_wait_for_line "$NB_NOTIFY_LOG" '(^| |\\n)STOPPING=1' "$NB_TIMEOUT" \
        $(($(notify_count "$k" '(^| |\\n)STOPPING=1') + 1)) "$DAEMON_PID" >/dev/null
e=$(nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_STOPPING" _PID="$DAEMON_PID")
in_flight=$(jq -r '.IN_FLIGHT // empty' <<<"$e")
nb_assert_match '^[0-9]+$' "$in_flight" "IN_FLIGHT of the STOPPING entry"
[ "$in_flight" -ge 1 ] || nb_fail "STOPPING says $in_flight requests in flight; the emulator held at least one"
thaw
nb_stop "$DAEMON_PID" # already signalled: waits for the exit
nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM with $in_flight requests in flight"
nb_assert_file_no_match "$T/daemon.log" 'Sanitizer|runtime error' "daemon output (sanitizers)"
sent=$(djournal MESSAGE_ID="$MESSAGE_CREATE_SENT" | wc -l)
accepted=$(djournal MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" | wc -l)
nb_step "stopped with $in_flight requests in flight: $sent creates sent, $accepted accepted before the exit"
# Stopping means no new work: nothing is sent after the STOPPING entry.
djournal >"$T/stop-journal.json"
after=$(jq -r --arg s "$MESSAGE_STOPPING" --arg c "$MESSAGE_CREATE_SENT" \
        'if .MESSAGE_ID == $s then "stop" elif .MESSAGE_ID == $c then "sent" else empty end' "$T/stop-journal.json" |
        awk '$0 == "stop" { s = 1; next } s && $0 == "sent" { n++ } END { print n + 0 }')
nb_assert_eq 0 "$after" "creates sent after STOPPING"

# ---- afterwards: nothing lost, nothing duplicated ----
nb_step "once --wait afterwards converges with exactly one instance per name"
nb_emulator_config latency_ms=0
assert_once_converges "$n_all" "after SIGTERM with requests in flight"

# ---- 4. SIGTERM with requests outlasting the grace ----
# Every create is made at once but its answer held 30 s (--slow-ms, creates only): the
# daemon cannot learn the outcome before its stop deadline (10 s), cancels, exits 0.
# The instances exist; the open intents must make the next run list and adopt them,
# never create a second one; the creates never sent are sent then.
nb_step "SIGTERM with requests outlasting the stop deadline: exit 0, then adopted, not duplicated"
nb_emulator_config 'slow_ms=30000&fault_routes=create'
for i in $(seq 1 "$N_LATE"); do
        nb_write_manifest "$M/late-$i.yaml" "late-$i"
done
n_all=$((n_all + N_LATE))
k=$(wc -l <"$NB_NOTIFY_LOG")
n_ready=$(notify_count "$k" "$READY_RE")
start_daemon
nb_wait_for_line "$NB_NOTIFY_LOG" "$READY_RE" "$NB_TIMEOUT" $((n_ready + 1)) "$DAEMON_PID" >/dev/null
nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_CREATE_SENT" _PID="$DAEMON_PID" >/dev/null
kill -TERM "$DAEMON_PID"
e=$(nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_STOPPING" _PID="$DAEMON_PID")
in_flight=$(jq -r '.IN_FLIGHT // empty' <<<"$e")
nb_assert_match '^[0-9]+$' "$in_flight" "IN_FLIGHT of the STOPPING entry"
[ "$in_flight" -ge 1 ] || nb_fail "STOPPING says $in_flight requests in flight; the emulator holds every answer 30 s"
nb_stop "$DAEMON_PID"
nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM with $in_flight requests held past the deadline"
nb_assert_file_no_match "$T/daemon.log" 'Sanitizer|runtime error' "daemon output (sanitizers)"
[ -n "$(notify_line_after "$k" '(^| |\\n)STOPPING=1')" ] || nb_fail "no STOPPING=1 from the last daemon"
nb_assert_eq 0 "$(djournal MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" | wc -l)" "creates accepted (every answer was held)"
made=$(nb_emulator_stats | jq '[.creates.by_name | to_entries[] | select(.key | startswith("late-")) | .value.created] | add // 0')
nb_step "stopped with $in_flight requests in flight; $made of $N_LATE instances made but never answered"
[ "$made" -ge 1 ] || nb_fail "no create reached the emulator before the stop"
nb_emulator_config 'slow_ms=0&fault_routes=all'
assert_once_converges "$n_all" "after SIGTERM past the deadline"
nb_assert_eq "$made" "$(jq '[.instances[] | select((.name | startswith("late-")) and .result == "adopted")] | length' "$T/status.json")" \
        "late-* instances adopted (made, never answered)"

echo PASS
