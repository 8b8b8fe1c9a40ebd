#!/usr/bin/env bash
# daemon/log.c against a real systemd-journald (through build/log-probe, which writes
# one entry with the daemon's own logging code): the fields that arrive, values with
# newlines intact, the code location of the caller, --log-target=auto's choice, the
# level filter, and the console fallback when the journal is gone.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
nb_setup "$@"
PROBE=$BUILD/log-probe
[ -x "$PROBE" ] || nb_fail "$PROBE missing: run make"
nb_start_journald

ID=22d9a72b4890455691dcdcd84bf08b8c # MESSAGE_CREATE_ACCEPTED
m="log-$$-$RANDOM"

nb_step "journal target: structured fields, verbatim values, the caller's location"
out=$("$PROBE" journal 6 6 "$ID" "$m created \"train-01\"" NOTEBOOK=train-01 INSTANCE_ID=abc-123 \
        $'API_ERROR_MSG=line one\nline two' EMPTY= SKIPPED lower=dropped TOKEN=t0k3n 2>"$T/probe.err")
nb_assert_eq journal "$out" "resolved target"
nb_assert_eq "" "$(cat "$T/probe.err")" "probe stderr"
e=$(nb_wait_for_journal "\"MESSAGE\":\"$m created" 1 SYSLOG_IDENTIFIER=notebookd)
nb_assert_eq "$m created \"train-01\"" "$(jq -r .MESSAGE <<<"$e")" MESSAGE
nb_assert_eq 6 "$(jq -r .PRIORITY <<<"$e")" PRIORITY
nb_assert_eq "$ID" "$(jq -r .MESSAGE_ID <<<"$e")" MESSAGE_ID
nb_assert_eq train-01 "$(jq -r .NOTEBOOK <<<"$e")" NOTEBOOK
nb_assert_eq abc-123 "$(jq -r .INSTANCE_ID <<<"$e")" INSTANCE_ID
nb_assert_eq $'line one\nline two' "$(jq -r .API_ERROR_MSG <<<"$e")" "API_ERROR_MSG (newline kept)"
nb_assert_eq "" "$(jq -r .EMPTY <<<"$e")" EMPTY
nb_assert_eq null "$(jq -r .SKIPPED <<<"$e")" "SKIPPED (NULL value)"
nb_assert_eq null "$(jq -r .lower <<<"$e")" "lower (invalid name)"
nb_assert_eq "[redacted]" "$(jq -r .TOKEN <<<"$e")" TOKEN
# One location, the caller's: sd-journal.h's own CODE_FILE must not be added beside it.
nb_assert_eq string "$(jq -r '.CODE_FILE | type' <<<"$e")" "CODE_FILE (a single value)"
nb_assert_match 'tests/tools/log-probe\.c$' "$(jq -r .CODE_FILE <<<"$e")" CODE_FILE
nb_assert_eq main "$(jq -r .CODE_FUNC <<<"$e")" CODE_FUNC
nb_assert_match '^[0-9]+$' "$(jq -r .CODE_LINE <<<"$e")" CODE_LINE
nb_assert_eq journal "$(jq -r ._TRANSPORT <<<"$e")" _TRANSPORT
nb_assert_eq 1 "$(nb_journal_json NOTEBOOK=train-01 SYSLOG_IDENTIFIER=notebookd | wc -l)" "entries for NOTEBOOK=train-01"

nb_step "a message with a newline stays one entry"
"$PROBE" journal 6 4 - $'first line\nsecond line '"$m" >/dev/null
e=$(nb_wait_for_journal "second line $m" 1 SYSLOG_IDENTIFIER=notebookd PRIORITY=4)
nb_assert_eq $'first line\nsecond line '"$m" "$(jq -r .MESSAGE <<<"$e")" MESSAGE
nb_assert_eq null "$(jq -r .MESSAGE_ID <<<"$e")" "MESSAGE_ID (none given)"

nb_step "the level filter: a debug entry is dropped at info"
"$PROBE" journal 6 7 - "$m filtered" >/dev/null
"$PROBE" journal 7 7 - "$m debug shown" >/dev/null
nb_wait_for_journal "$m debug shown" >/dev/null
nb_assert_eq 0 "$(nb_journal_json SYSLOG_IDENTIFIER=notebookd | grep -c "$m filtered" || true)" "filtered entries"

nb_step "auto: the journal when stderr is the journal stream or under systemd, else the console"
: >"$T/stderr.file"
stream=$(stat -c '%d:%i' "$T/stderr.file")
out=$(JOURNAL_STREAM=$stream "$PROBE" auto 6 6 - "$m via stream" 2>>"$T/stderr.file")
nb_assert_eq journal "$out" "target with JOURNAL_STREAM naming stderr"
out=$(JOURNAL_STREAM=1:1 "$PROBE" auto 6 6 - "$m to console" 2>>"$T/stderr.file")
nb_assert_eq console "$out" "target with someone else's JOURNAL_STREAM"
out=$(INVOCATION_ID=0123456789abcdef0123456789abcdef "$PROBE" auto 6 6 - "$m under systemd" 2>>"$T/stderr.file")
nb_assert_eq journal "$out" "target under systemd (INVOCATION_ID, socket present)"
nb_wait_for_journal "$m via stream" >/dev/null
nb_wait_for_journal "$m under systemd" >/dev/null
nb_assert_eq "notebookd: info: $m to console" "$(cat "$T/stderr.file")" "console output"

nb_step "journal gone: entries fall back to the console instead of vanishing"
nb_stop "$NB_JOURNALD_PID"
err=$("$PROBE" journal 6 3 - "$m after journald" NOTEBOOK=x 2>&1 >/dev/null)
nb_assert_eq "notebookd: error: $m after journald [NOTEBOOK=x]" "$err" "fallback line"

echo PASS
