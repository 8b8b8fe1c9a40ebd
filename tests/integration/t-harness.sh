#!/usr/bin/env bash
# The harness itself (lib.sh): a private journald that receives entries and shows them
# as JSON, the notify recorder, the waits (including that they can fail), process
# clean-up, and the emulator start-up. Every other integration test stands on these.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

nb_step "assertions fail when they should"
(nb_assert_eq a b "x") 2>/dev/null && nb_fail "nb_assert_eq passed on a != b"
(nb_assert_match '^[0-9]+$' "12a") 2>/dev/null && nb_fail "nb_assert_match passed on a mismatch"
nb_assert_eq a a
nb_assert_match '^[0-9]+$' 123

nb_step "notify recorder: one line per datagram, newlines escaped"
nb_start_notify
nb_assert_eq "$T/notify.sock" "$NOTIFY_SOCKET" NOTIFY_SOCKET
[ -S "$NOTIFY_SOCKET" ] || nb_fail "no socket at $NOTIFY_SOCKET"
systemd-notify --ready --status="2 desired, 1 running"
line=$(nb_wait_for_line "$NB_NOTIFY_LOG" 'READY=1')
nb_assert_match '^[0-9]{16} READY=1\\nSTATUS=2 desired, 1 running$' "$line" "recorded datagram"
systemd-notify WATCHDOG=1
systemd-notify --status='back\slash'
nb_wait_for_line "$NB_NOTIFY_LOG" 'WATCHDOG=1' >/dev/null
line=$(nb_wait_for_line "$NB_NOTIFY_LOG" 'STATUS=back')
nb_assert_match 'STATUS=back\\\\slash$' "$line" "backslash escaped"
# The N-th match: READY=1 appears once, so waiting for a second one must fail.
(NB_TIMEOUT=1 nb_wait_for_line "$NB_NOTIFY_LOG" 'READY=1' 1 2) 2>/dev/null &&
        nb_fail "nb_wait_for_line found a second READY=1 that was never sent"

nb_step "waits fail on a missing line, and early when the writer exits"
: >"$T/empty.log"
(nb_wait_for_line "$T/empty.log" 'never' 1) 2>/dev/null && nb_fail "wait for a line never written succeeded"
nb_spawn short-lived sh -c 'echo starting; exit 3'
pid=$NB_PID
# Bounded by the process, not the 60 s timeout: tail --pid ends the wait when it exits.
(nb_wait_for_line "$T/short-lived.log" 'never' "$NB_TIMEOUT" 1 "$pid") 2>/dev/null &&
        nb_fail "wait on an exited writer succeeded"
nb_stop "$pid"
nb_assert_eq 3 "$NB_STATUS" "exit status of the short-lived process"

nb_step "nb_spawn/nb_stop report how a process ended"
# Each signal only once the child has exec'd: between the fork and the exec, a SIGTERM
# is caught by the copy of the test's trap and lost at the exec, and a background job of
# a script ignores SIGINT until env(1) resets it. The child says when it is past both
# (after env has run), so the test waits for that line.
nb_spawn sleeper sh -c 'echo ready; exec sleep 1000'
nb_wait_for_line "$T/sleeper.log" '^ready$' >/dev/null
nb_stop "$NB_PID"
nb_assert_eq 143 "$NB_STATUS" "exit status after SIGTERM"
nb_spawn sleeper2 sh -c 'echo ready; exec sleep 1000'
nb_wait_for_line "$T/sleeper2.log" '^ready$' >/dev/null
nb_stop "$NB_PID" INT
nb_assert_eq 130 "$NB_STATUS" "exit status after SIGINT"

nb_step "a subshell of the test never runs its clean-up"
# A child of the test's shell carries the test's trap handlers from the fork until it
# execs or resets them; a signal in that window (a helper killed at once) runs them in
# the child. Re-installing the handlers in a subshell and signalling it puts it in that
# state every time: the test's processes and $T must survive it.
nb_spawn survivor sleep 1000
survivor=$NB_PID
handlers=$(trap -p EXIT INT TERM)
[ -n "$handlers" ] || nb_fail "nb_setup installed no trap handlers"
rc=0
(eval "$handlers"; kill -TERM "$BASHPID"; exit 0) 2>/dev/null || rc=$?
nb_assert_eq 143 "$rc" "exit status of the signalled subshell"
[ -d "$T" ] || { echo "FAIL: a subshell's clean-up removed $T" >&2; exit 1; }
state=$(sed 's/.*) //' "/proc/$survivor/stat" 2>/dev/null | cut -d' ' -f1)
case $state in
""|Z|X) nb_fail "a subshell's clean-up stopped the test's process $survivor (state '${state:-gone}')" ;;
esac
# The case the deterministic check stands for: processes that exit at once, so that
# nb_stop's killer helper is stopped right after its fork, over and over.
for ((i = 0; i < 50; i++)); do
        nb_spawn quick true
        nb_stop "$NB_PID"
done
[ -d "$T" ] || { echo "FAIL: stopping short-lived processes removed $T" >&2; exit 1; }
kill -0 "$survivor" 2>/dev/null || nb_fail "stopping short-lived processes stopped $survivor"
nb_stop "$survivor"
nb_assert_eq 143 "$NB_STATUS" "exit status of the surviving process after SIGTERM"

nb_step "a private journald receives entries from any process of the test"
nb_start_journald
marker="harness-$$-$RANDOM"
echo "$marker via stdout" | systemd-cat -t nb-harness -p warning
logger --journald <<EOF
MESSAGE_ID=0b0b4c673a144b8681b50709e48cbbb6
MESSAGE=$marker via native protocol
SYSLOG_IDENTIFIER=nb-harness
NOTEBOOK=train-01
HTTP_STATUS=400
EOF
entry=$(nb_wait_for_journal "\"MESSAGE\":\"$marker via native protocol\"")
nb_assert_eq train-01 "$(jq -r .NOTEBOOK <<<"$entry")" NOTEBOOK
nb_assert_eq 400 "$(jq -r .HTTP_STATUS <<<"$entry")" HTTP_STATUS
nb_assert_eq 0b0b4c673a144b8681b50709e48cbbb6 "$(jq -r .MESSAGE_ID <<<"$entry")" MESSAGE_ID
nb_assert_eq journal "$(jq -r ._TRANSPORT <<<"$entry")" _TRANSPORT
nb_wait_for_journal "$marker via stdout" 1 SYSLOG_IDENTIFIER=nb-harness >/dev/null

# After --sync, everything sent before is readable at once: no wait needed.
logger --journald <<EOF
MESSAGE=$marker synced
SYSLOG_IDENTIFIER=nb-harness
EOF
got=$(nb_journal_json SYSLOG_IDENTIFIER=nb-harness | jq -r .MESSAGE)
nb_assert_eq "$marker via stdout
$marker via native protocol
$marker synced" "$got" "entries of nb-harness in order"
nb_assert_eq 1 "$(nb_journal_json NOTEBOOK=train-01 | wc -l)" "entries matching NOTEBOOK=train-01"
# Private: the entries are in this test's directory, nowhere else.
ls "$NB_JOURNAL_DIR"/*/*.journal >/dev/null || nb_fail "no journal files under $NB_JOURNAL_DIR"

nb_step "the emulator starts on a free port and answers"
if compgen -G "$NB_SRCDIR/tests/emulator/*.c" >/dev/null; then
        nb_start_emulator
        nb_assert_match '^http://127\.0\.0\.1:[0-9]+$' "$NB_EMULATOR_URL" NB_EMULATOR_URL
        code=$(curl -s -o /dev/null -w '%{http_code}' "$NB_EMULATOR_URL/_emulator/stats")
        nb_assert_eq 200 "$code" "GET /_emulator/stats"
else
        echo "note: no emulator in this tree yet; its start-up is not checked" >&2
fi

echo "PASS"
