#!/usr/bin/env bash
# `notebookd run` noticing changes to the manifests tree without a restart.
# The manifests path is a symlink to a revision directory, the layout git-sync
# uses ($T/git/current -> rev1), and one daemon lives through all of it:
#   1. a new file is reconciled (the latency from write to CREATE_SENT is printed, not
#      asserted: "within a second" is the debounce design, 200 ms / at most 1 s);
#   2. a git-style atomic rename (write a .tmp, mv into place) is reconciled;
#   3. an atomic symlink swap to rev2 (rev1 plus one manifest): the new one is created,
#      and the new tree is watched;
#   4. a burst of 500 files in a new subdirectory: all 500 created, exactly one create
#      per name, in few passes (PASS_FINISHED entries; < 50 asserted, the number printed);
#   5. a bad file is logged once with its position (MANIFEST_INVALID with CONFIG_FILE,
#      CONFIG_LINE, CONFIG_COLUMN) while a good file written with it converges.
# Throughout: no instance is created twice, every name has one live instance, and no
# change sends a list call (part 6: an edit is an incremental pass, planned from the
# records and the last listing; counted on the emulator); SIGHUP, at the end, lists.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=DAEMONWATCHAK0000001
SK=daemonWatchSecretKey0123456789abcdefgHI
PROJECT=1a1b1c1d1e1f20212223242526272829
BURST=500
eval "$(nb_message_ids | sed 's/^\([A-Z_]*\) \([0-9a-f]*\)$/\1=\2/')"

nb_start_journald
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 100
nb_start_notify

# ---- local helpers ----
G=$T/git
MP=$G/current # the manifests path in the config: a symlink to a revision
S=$T/state
djournal() { nb_journal_json _PID="$DAEMON_PID" "$@"; }
now_us() { date +%s%6N; }



# One notebook created by the daemon and RUNNING; prints its CREATE_SENT entry.
wait_created() { # NAME
        nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" NOTEBOOK="$1" _PID="$DAEMON_PID" >/dev/null
        nb_wait_for_journal '"STATUS":"RUNNING"' 1 MESSAGE_ID="$MESSAGE_STATUS_CHANGED" NOTEBOOK="$1" _PID="$DAEMON_PID" >/dev/null
        nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_CREATE_SENT" NOTEBOOK="$1" _PID="$DAEMON_PID"
}

# Every name the emulator saw a create for was created exactly once, never refused as
# a duplicate; there are N of them, all live.
assert_one_each() { # N WHAT
        local bad
        nb_emulator_stats >"$T/stats.json"
        bad=$(jq -r '.creates.by_name | to_entries[] | select(.value.requests != 1 or .value.created != 1 or .value.duplicates != 0) | "\(.key) \(.value)"' "$T/stats.json")
        [ -z "$bad" ] || nb_fail "$2: not exactly one create per name: $(printf '%s\n' "$bad" | head -n 5)"
        nb_assert_eq "$1" "$(jq '.creates.by_name | length' "$T/stats.json")" "$2: names created"
        nb_assert_eq "$1" "$(jq '.instances.live' "$T/stats.json")" "$2: live instances"
        nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats.json")" \
                "$2: protocol violations ($(jq -c '.recent_violations' "$T/stats.json"))"
}

list_calls() { nb_emulator_stats | jq '.by_route.list // 0'; }
# No list call since start-up, and the last pass was an incremental one.
assert_no_listing() { # WHAT
        nb_assert_eq "$LISTS0" "$(list_calls)" "$1: list calls since start-up (an edit lists nothing)"
        nb_assert_eq incremental "$(djournal MESSAGE_ID="$MESSAGE_PASS_STARTED" | tail -n 1 | jq -r .PASS_KIND)" \
                "$1: the last pass's PASS_KIND"
}

report_latency() { # WHAT T0_US CREATE_SENT_JSON
        local sent
        sent=$(jq -r '._SOURCE_REALTIME_TIMESTAMP // .__REALTIME_TIMESTAMP' <<<"$3")
        nb_step "$1: create sent $(((sent - $2) / 1000)) ms after the change (recorded, not asserted)"
}

# ---- set-up: rev1 with two notebooks, current -> rev1 ----
mkdir -p "$G/rev1"
nb_write_manifest "$G/rev1/w-one.yaml" w-one
nb_write_manifest "$G/rev1/w-two.yaml" w-two
ln -s rev1 "$MP"

nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$MP" "$S" "resync_interval: 10m"

nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
        -u HUAWEICLOUD_SDK_PROJECT_ID CREDENTIALS_DIRECTORY="$T/creds" \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal run
DAEMON_PID=$NB_PID
nb_wait_for_line "$NB_NOTIFY_LOG" '(^| |\\n)READY=1' "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null
nb_wait_journal_names 2 '"STATUS":"RUNNING"' MESSAGE_ID="$MESSAGE_STATUS_CHANGED" _PID="$DAEMON_PID"
assert_one_each 2 "start-up"
nb_assert_eq full "$(djournal MESSAGE_ID="$MESSAGE_PASS_STARTED" | head -n 1 | jq -r .PASS_KIND)" "start-up PASS_KIND"
LISTS0=$(list_calls)
[ "$LISTS0" -ge 1 ] || nb_fail "start-up sent no list call"

# ---- 1. a new file ----
nb_step "a new file is reconciled without a restart"
t0=$(now_us)
nb_write_manifest "$MP/w-new.yaml" w-new
sent=$(wait_created w-new)
report_latency "new file" "$t0" "$sent"
assert_one_each 3 "new file"
assert_no_listing "new file"

# ---- 2. git-style atomic rename ----
nb_step "an atomic rename (write .tmp, mv into place) is reconciled"
t0=$(now_us)
nb_write_manifest "$MP/w-renamed.yaml.tmp" w-renamed
mv "$MP/w-renamed.yaml.tmp" "$MP/w-renamed.yaml"
sent=$(wait_created w-renamed)
report_latency "atomic rename" "$t0" "$sent"
assert_one_each 4 "atomic rename"

# ---- 3. atomic symlink swap ----
nb_step "an atomic symlink swap to a new revision is reconciled"
cp -a "$G/rev1" "$G/rev2"
nb_write_manifest "$G/rev2/w-swap.yaml" w-swap
t0=$(now_us)
ln -s rev2 "$G/tmp-link"
mv -T "$G/tmp-link" "$MP"
[ "$(readlink "$MP")" = rev2 ] || nb_fail "the swap did not happen: $MP -> $(readlink "$MP")"
sent=$(wait_created w-swap)
report_latency "symlink swap" "$t0" "$sent"
rm -rf "$G/rev1" # git-sync removes the old revision: nothing desired goes with it
assert_one_each 5 "symlink swap"
# The new revision is watched: a file written into it (through the path) is noticed.
nb_write_manifest "$MP/w-in-rev2.yaml" w-in-rev2
wait_created w-in-rev2 >/dev/null
assert_one_each 6 "file in the new revision"
assert_no_listing "rename and symlink swap"

# ---- 4. a burst of 500 files ----
nb_step "a burst of $BURST files in a new directory: all created once, in few passes"
passes_before=$(djournal MESSAGE_ID="$MESSAGE_PASS_FINISHED" | wc -l)
mkdir "$MP/burst"
t0=$(now_us)
for i in $(seq 1 "$BURST"); do
        nb_write_manifest "$MP/burst/b-$i.yaml" "b-$i"
done
t1=$(now_us)
# A generous bound for 500 creates and polls under the sanitizers: a hang guard only.
NB_TIMEOUT=600 nb_wait_journal_names "$BURST" '"NOTEBOOK":"b-[0-9]+"' MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" _PID="$DAEMON_PID"
NB_TIMEOUT=600 nb_wait_journal_names "$BURST" '"NOTEBOOK":"b-[0-9]+".*"STATUS":"RUNNING"|"STATUS":"RUNNING".*"NOTEBOOK":"b-[0-9]+"' \
        MESSAGE_ID="$MESSAGE_STATUS_CHANGED" _PID="$DAEMON_PID"
total=$((6 + BURST))
NB_TIMEOUT=600 nb_wait_for_line "$NB_NOTIFY_LOG" "STATUS=$total desired, $total running, 0 creating" 600 1 "$DAEMON_PID" >/dev/null
t2=$(now_us)
passes=$(($(djournal MESSAGE_ID="$MESSAGE_PASS_FINISHED" | wc -l) - passes_before))
nb_step "burst: written in $(((t1 - t0) / 1000)) ms, all RUNNING after $(((t2 - t0) / 1000)) ms, $passes passes (PASS_FINISHED)"
[ "$passes" -ge 1 ] || nb_fail "no pass after the burst"
[ "$passes" -lt 50 ] || nb_fail "the burst of $BURST files took $passes passes (debouncing should coalesce it into few)"
assert_one_each "$total" "burst"
assert_no_listing "burst"
nb_assert_eq "$BURST" "$(djournal MESSAGE_ID="$MESSAGE_CREATE_SENT" | jq -r 'select(.NOTEBOOK | test("^b-[0-9]+$")) | .NOTEBOOK' | sort -u | wc -l)" \
        "burst names with a CREATE_SENT"
nb_assert_eq "$BURST" "$(djournal MESSAGE_ID="$MESSAGE_CREATE_SENT" | jq -r 'select(.NOTEBOOK | test("^b-[0-9]+$")) | .NOTEBOOK' | wc -l)" \
        "CREATE_SENT entries for the burst (one each)"

# ---- 5. a bad file beside a good one ----
nb_step "a bad file is logged with its position while the good one converges"
# volume_size's value is at line 8, column 20 (out of range: an error; flavors and
# profiles are open sets now, so a made-up flavor would only be sent and refused remotely)
printf 'name: w-bad\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n    location:\n      volume_size: 9999\n' >"$MP/bad.yaml"
nb_write_manifest "$MP/w-good.yaml" w-good
e=$(nb_wait_for_journal '"CONFIG_FILE":"[^"]*/bad\.yaml"' 1 MESSAGE_ID="$MESSAGE_MANIFEST_INVALID" _PID="$DAEMON_PID")
file=$(jq -r .CONFIG_FILE <<<"$e")
real=$(readlink -f "$MP")
[ "$file" = "$MP/bad.yaml" ] || [ "$file" = "$real/bad.yaml" ] ||
        nb_fail "CONFIG_FILE is '$file', expected $MP/bad.yaml (or $real/bad.yaml)"
nb_assert_eq 8 "$(jq -r .CONFIG_LINE <<<"$e")" CONFIG_LINE
nb_assert_eq 20 "$(jq -r .CONFIG_COLUMN <<<"$e")" CONFIG_COLUMN
nb_assert_eq 3 "$(jq -r .PRIORITY <<<"$e")" "PRIORITY (an error)"
nb_assert_match 'bad\.yaml:8:20: .*volume_size 9999' "$(jq -r .MESSAGE <<<"$e")" MESSAGE
wait_created w-good >/dev/null
nb_wait_for_line "$NB_NOTIFY_LOG" "STATUS=$((total + 1)) desired, $((total + 1)) running, 0 creating, 0 waiting, 0 failed, 0 rejected, 0 retrying, 1 invalid manifest" \
        "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null
# Another change rescans the tree: the bad file, unchanged, is not reported again.
nb_write_manifest "$MP/w-last.yaml" w-last
wait_created w-last >/dev/null
nb_assert_eq 1 "$(djournal MESSAGE_ID="$MESSAGE_MANIFEST_INVALID" | grep -c '/bad\.yaml"')" \
        "MANIFEST_INVALID entries for the unchanged bad file"
nb_assert_eq 0 "$(nb_emulator_stats | jq '.creates.by_name["w-bad"].requests // 0')" "creates of the invalid manifest's name"
assert_one_each $((total + 2)) "bad file"
assert_no_listing "bad file"

# ---- 6. SIGHUP: a full pass lists again ----
nb_step "SIGHUP: a full pass lists every workspace again, and creates nothing"
fulls=$(djournal MESSAGE_ID="$MESSAGE_PASS_FINISHED" PASS_KIND=full | wc -l)
kill -HUP "$DAEMON_PID"
nb_wait_for_journal . $((fulls + 1)) MESSAGE_ID="$MESSAGE_PASS_FINISHED" PASS_KIND=full _PID="$DAEMON_PID" >/dev/null
[ "$(list_calls)" -gt "$LISTS0" ] || nb_fail "the full pass after SIGHUP sent no list call"
assert_one_each $((total + 2)) "after SIGHUP"

nb_stop "$DAEMON_PID" TERM
nb_assert_eq 0 "$NB_STATUS" "exit status after SIGTERM"
nb_assert_file_no_match "$T/daemon.log" 'Sanitizer|runtime error' "daemon output (sanitizers)"
echo PASS
