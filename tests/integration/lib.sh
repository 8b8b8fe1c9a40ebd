# tests/integration/lib.sh: the harness every integration test sources.
#
#   #!/usr/bin/env bash
#   . "$(dirname "$0")/lib.sh"
#   nb_setup "$@"            # first: may re-run the script in a private mount namespace
#   nb_start_journald        # a real systemd-journald, private to this test
#   nb_start_emulator --some-flag
#   nb_start_notify          # NOTIFY_SOCKET for the daemon under test
#   nb_spawn daemon "$NOTEBOOKD" --log-target=journal -e "$NB_EMULATOR_URL" run
#   nb_wait_for_line "$NB_NOTIFY_LOG" 'READY=1'
#   nb_journal_json SYSLOG_IDENTIFIER=notebookd | jq ...
#
# Everything a test starts is stopped by the EXIT trap, and $T (the test's temporary
# directory) is removed (NB_KEEP=1 keeps it; on failure the logs' tails are printed).
# Waits are event-driven (tail -F / journalctl -f, both inotify-based) and bounded by a
# generous timeout that only turns a hang into a failure: NB_TIMEOUT seconds (60), not a
# speed assertion.
#
# Why a private mount namespace: libsystemd's sd_journal_sendv() always writes to
# /run/systemd/journal/socket. To give each test its own journal without touching the
# host's (or needing one: CI has no systemd as PID 1), nb_setup re-executes the test in
# `unshare --mount`, and nb_start_journald mounts a tmpfs on /run there and starts
# systemd-journald on it. Every process the test starts inherits the namespace, so the
# daemon under test logs to that journald, and journalctl reads its files in $T.
# This needs root (CI and `make test` run as root); without it journald tests fail
# with a clear message rather than pass vacuously.

set -euo pipefail

NB_TIMEOUT=${NB_TIMEOUT:-60}
NB_PIDS=()
NB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NB_SRCDIR=$(cd "$NB_LIB_DIR/../.." && pwd)

# ---- reporting ----

# Where the test was when it failed: the first caller outside this file.
nb__where() {
        local i
        for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
                if [ "${BASH_SOURCE[$i]}" != "${BASH_SOURCE[0]}" ]; then
                        echo "$(basename "${BASH_SOURCE[$i]}"):${BASH_LINENO[$((i - 1))]}"
                        return
                fi
        done
        echo "?"
}

nb_fail() { # MESSAGE...
        echo "FAIL ($(nb__where)): $*" >&2
        exit 1
}

nb_skip() { # REASON: only for optional tools (a missing linter), never for the product
        echo "SKIP: $*" >&2
        exit 0
}

nb_step() { # DESCRIPTION: a heading in the test's log
        echo "== $*" >&2
}

nb_assert_eq() { # EXPECTED ACTUAL [WHAT]
        [ "$1" = "$2" ] || nb_fail "${3:-value}: expected '$1', got '$2'"
}

nb_assert_ne() { # UNEXPECTED ACTUAL [WHAT]
        [ "$1" != "$2" ] || nb_fail "${3:-value}: expected anything but '$1'"
}

nb_assert_match() { # ERE STRING [WHAT]
        [[ $2 =~ $1 ]] || nb_fail "${3:-value}: '$2' does not match /$1/"
}

nb_assert_file_match() { # FILE ERE [WHAT]: some line of FILE matches
        grep -qE -- "$2" "$1" || nb_fail "${3:-$1}: no line matches /$2/ ($(wc -l <"$1") lines)"
}

nb_assert_file_no_match() { # FILE ERE [WHAT]: no line of FILE matches
        local hit
        if hit=$(grep -m1 -E -- "$2" "$1"); then
                nb_fail "${3:-$1}: unexpected line matching /$2/: $hit"
        fi
}

# ---- set-up and clean-up ----

nb_setup() { # "$@" of the test script
        # Re-run inside a private mount namespace (see the top of this file). exec keeps
        # the PID, so whoever started the test still waits for the right process.
        if [ "${NB_IN_NAMESPACE:-0}" != 1 ] && [ "$(id -u)" = 0 ] && unshare --mount --propagation private true 2>/dev/null; then
                NB_IN_NAMESPACE=1 exec unshare --mount --propagation private -- bash "$0" "$@"
        fi
        NB_IN_NAMESPACE=${NB_IN_NAMESPACE:-0}

        local build=${BUILD:-build}
        case $build in /*) ;; *) build=$NB_SRCDIR/$build ;; esac
        BUILD=$build
        NOTEBOOKD=$BUILD/notebookd
        EMULATOR=$BUILD/modelarts-emulator
        NOTIFY_RECORDER=$BUILD/notify-recorder
        export BUILD NOTEBOOKD EMULATOR NOTIFY_RECORDER

        T=$(mktemp -d "${TMPDIR:-/tmp}/nb-$(basename "$0" .sh).XXXXXX")
        export T
        # A child of this shell (a `&` job, a $(...), a <(...)) starts as a copy of it,
        # handlers included, until it execs or resets them; a signal in that window
        # would run them there. nb__cleanup therefore acts only in the test's own shell
        # ($$ is its PID in every subshell too, $BASHPID the current one), and every
        # background helper below drops the EXIT trap first (nb__bg).
        trap nb__cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        nb_step "$(basename "$0") in $T (build: $BUILD)"
}

# True in the test's own shell, false in any subshell of it.
nb__in_main() { [ "$BASHPID" = "$$" ]; }

# Run COMMAND ARGS... without the test's EXIT trap: the first thing a background helper
# does. Use as ( nb__bg CMD ... ) & or <(nb__bg CMD ...): the subshell execs COMMAND,
# so $! is COMMAND's PID. A SIGTERM that comes while the TERM handler is still set runs
# it at the end of the command it lands in (exit 143, and the EXIT trap, which
# nb__cleanup ignores in a subshell). One that came after the last such check and
# before the exec would be noted by bash and lost by the exec, and the helper would
# live on (seen under load in CI): so the handler is dropped first, and from then on
# the signal's default ends the subshell, with the same 143.
nb__bg() { # COMMAND ARGS...
        trap - EXIT
        trap - TERM
        exec "$@"
}

# Commands nb__cleanup runs first (in the test's shell only), e.g. to thaw a process
# the test stopped, so that it can be terminated.
NB_AT_EXIT=()
nb_at_exit() { # SHELL-COMMAND
        NB_AT_EXIT+=("$1")
}

nb__track() { # PID
        NB_PIDS+=("$1")
}

nb__untrack() { # PID
        local p keep=()
        for p in "${NB_PIDS[@]}"; do
                [ "$p" = "$1" ] || keep+=("$p")
        done
        NB_PIDS=("${keep[@]+"${keep[@]}"}")
}

# Stop everything still running, newest first (the daemon before the journald it
# logs to), then remove $T.
nb__cleanup() {
        local rc=$? i pid
        # In a subshell (signalled before it reset the traps) there is nothing of ours to
        # clean up: the test's processes and $T belong to the test's shell.
        nb__in_main || return "$rc"
        set +e
        for ((i = 0; i < ${#NB_AT_EXIT[@]}; i++)); do
                eval "${NB_AT_EXIT[$i]}"
        done
        for ((i = ${#NB_PIDS[@]} - 1; i >= 0; i--)); do
                pid=${NB_PIDS[$i]}
                kill -TERM "$pid" 2>/dev/null && nb__reap "$pid" 10 2>/dev/null
        done
        if [ "$rc" -ne 0 ] && [ -n "${T:-}" ] && [ -d "$T" ]; then
                local f
                for f in "$T"/*.log; do
                        [ -s "$f" ] || continue
                        echo "---- last lines of $(basename "$f") ----" >&2
                        tail -n 15 "$f" >&2
                done
        fi
        if [ -n "${T:-}" ] && [ -d "$T" ]; then
                if [ "${NB_KEEP:-0}" = 1 ]; then
                        echo "kept $T" >&2
                else
                        rm -rf "$T"
                fi
        fi
        exit "$rc"
}

# Wait for a child to exit, SIGKILLing it after GRACE seconds (a safety net for a hung
# process, not a synchronisation: the normal case returns as soon as it exits).
# Sets NB_STATUS to its exit status. Not in a $(...): only the parent shell can wait.
nb__reap() { # PID GRACE
        local pid=$1 grace=$2 killer
        # A single process (perl-base is essential in Debian), so standing it down leaves
        # no orphaned sleep behind.
        (nb__bg perl -e 'sleep $ARGV[0]; kill "KILL", $ARGV[1]' "$grace" "$pid") >/dev/null 2>&1 &
        killer=$!
        NB_STATUS=0 # read by the caller of nb_stop
        wait "$pid" || NB_STATUS=$?
        # SIGKILL: a caught signal that reaches the helper just before its exec is lost
        # (bash only notes it), and the wait below would last the whole grace period.
        kill -KILL "$killer" 2>/dev/null || true
        wait "$killer" || true
}

# The credential files a test's config names (ak_file/sk_file) or CREDENTIALS_DIRECTORY
# points at: $T/creds/ak and $T/creds/sk, private as the daemon requires.
nb_write_creds() { # AK SK
        mkdir -p -m 0700 "$T/creds"
        printf '%s' "$1" >"$T/creds/ak"
        printf '%s' "$2" >"$T/creds/sk"
        chmod 0600 "$T/creds/ak" "$T/creds/sk"
}

# The daemon's config for a test, in $T/config.yaml: the emulator's endpoint, PROJECT,
# MANIFESTS and STATE, then each further argument as a line of its own ("key: value").
nb_write_config() { # PROJECT MANIFESTS STATE [LINE...]
        {
                printf 'endpoint: %s\nproject_id: %s\nmanifests: %s\nstate_dir: %s\n' \
                        "$NB_EMULATOR_URL" "$1" "$2" "$3"
                shift 3
                [ $# -eq 0 ] || printf '%s\n' "$@"
        } >"$T/config.yaml"
}

# Start a background process tracked for clean-up, with stdout and stderr in
# $T/NAME.log. Sets NB_PID.
nb_spawn() { # NAME COMMAND ARGS...
        local name=$1
        shift
        # Background jobs of a script start with SIGINT and SIGQUIT ignored; a test of
        # how a program handles them needs the defaults back.
        (nb__bg env --default-signal=INT,QUIT "$@") >"$T/$name.log" 2>&1 &
        NB_PID=$!
        nb__track "$NB_PID"
}

# Signal a process started by nb_spawn (default SIGTERM) and wait for it to exit;
# NB_STATUS is then its exit status (128+N when killed by signal N). A process that
# does not exit within NB_TIMEOUT is killed (status 137). Call it directly, not in $(...).
nb_stop() { # PID [SIGNAL]
        local pid=$1 sig=${2:-TERM}
        kill -"$sig" "$pid" 2>/dev/null || true
        # bash 5.2 with an EXIT trap may print "wait_for: No record of process" here
        nb__reap "$pid" "$NB_TIMEOUT" 2>/dev/null
        nb__untrack "$pid"
}

# ---- waiting ----

# Run COMMAND (which follows a stream) until N lines matched ERE, or until it ends,
# or TIMEOUT. Prints the N-th matching line; fails (returns 1) otherwise.
nb__wait_stream() { # TIMEOUT ERE N COMMAND...
        local timeout=$1 re=$2 n=$3 fd pid out rc=0
        shift 3
        exec {fd}< <(nb__bg timeout "$timeout" "$@" 2>/dev/null)
        pid=$!
        out=$(grep -m "$n" -E -- "$re" <&"$fd") || rc=$?
        kill "$pid" 2>/dev/null || true # timeout passes SIGTERM on to the follower
        exec {fd}<&-
        [ "$rc" -eq 0 ] || return 1
        [ "$(printf '%s\n' "$out" | wc -l)" -eq "$n" ] || return 1
        printf '%s\n' "$out" | tail -n 1
}

# Wait until FILE has N lines (default 1) matching ERE, counting from the start of
# the file; prints the N-th. With PID, stops waiting early when that process exits.
# Exits the test with a failure after TIMEOUT seconds (default NB_TIMEOUT).
nb_wait_for_line() { # FILE ERE [TIMEOUT [N [PID]]]
        local file=$1 re=$2 timeout=${3:-$NB_TIMEOUT} n=${4:-1} pid=${5:-}
        local follow=(tail -n +1 -F -- "$file")
        [ -n "$pid" ] && follow=(tail -n +1 -F --pid="$pid" -- "$file")
        nb__wait_stream "$timeout" "$re" "$n" "${follow[@]}" ||
                nb_fail "no line matching /$re/ (x$n) in $file within ${timeout}s${pid:+ (or process $pid exited)}"
}

# ---- sd_notify ----

# A recorder on $T/notify.sock appending each notification to $T/notify.log, one line
# per datagram prefixed by the time of receipt in microseconds (CLOCK_REALTIME, like
# the journal's __REALTIME_TIMESTAMP): "1700000000000000 READY=1\nSTATUS=...".
# Exports NOTIFY_SOCKET, so every process started afterwards may notify it.
nb_start_notify() {
        [ -x "$NOTIFY_RECORDER" ] || nb_fail "$NOTIFY_RECORDER missing: run make"
        NB_NOTIFY_LOG=$T/notify.log
        : >"$NB_NOTIFY_LOG"
        nb__start_recorder "$T/notify.sock" "$NB_NOTIFY_LOG" notify-recorder
        NOTIFY_SOCKET=$T/notify.sock
        export NOTIFY_SOCKET NB_NOTIFY_LOG
}

nb__start_recorder() { # SOCKET OUTPUT NAME
        nb_spawn "$3" "$NOTIFY_RECORDER" -t "$1" "$2"
        nb_wait_for_line "$T/$3.log" '^ready$' "$NB_TIMEOUT" 1 "$NB_PID" >/dev/null
}

# ---- journald ----

# Start systemd-journald on a private /run (see the top of this file). Afterwards
# sd_journal_send(), systemd-cat and logger --journald from any process of the test
# land in $NB_JOURNAL_DIR, which nb_journal_json and nb_wait_for_journal read.
nb_start_journald() {
        local journald=${JOURNALD:-/lib/systemd/systemd-journald} d
        [ "$NB_IN_NAMESPACE" = 1 ] ||
                nb_fail "a private journald needs root and unshare --mount (running as uid $(id -u))"
        [ -x "$journald" ] || nb_fail "$journald missing: apt-get install systemd (make deps)"
        [ -x "$NOTIFY_RECORDER" ] || nb_fail "$NOTIFY_RECORDER missing: run make"
        [ -s /etc/machine-id ] || nb_fail "/etc/machine-id is missing or empty: journald needs it (systemd-machine-id-setup)"

        NB_JOURNAL_DIR=$T/journal
        mkdir -p "$NB_JOURNAL_DIR"
        # Volatile storage in $T, no forwarding anywhere, no rate limit (a test's burst
        # of entries must all arrive), no kernel log or audit (not ours to read).
        cat >"$T/journald.conf" <<-'EOF'
	[Journal]
	Storage=volatile
	RateLimitIntervalSec=0
	RateLimitBurst=0
	ForwardToSyslog=no
	ForwardToKMsg=no
	ForwardToConsole=no
	ForwardToWall=no
	ReadKMsg=no
	Audit=no
	EOF
        mount -t tmpfs -o mode=0755 nb-run /run
        mkdir -p /run/systemd/journal /run/log/journal
        mount --bind "$NB_JOURNAL_DIR" /run/log/journal
        # The host's journald configuration must not apply (persistent storage, limits).
        if [ -e /etc/systemd/journald.conf ]; then
                mount --bind "$T/journald.conf" /etc/systemd/journald.conf
        else
                mkdir -p /run/systemd/journald.conf.d
                cp "$T/journald.conf" /run/systemd/journald.conf.d/nb-test.conf
        fi
        for d in /etc/systemd/journald.conf.d /usr/lib/systemd/journald.conf.d /usr/local/lib/systemd/journald.conf.d; do
                [ -d "$d" ] && mount -t tmpfs -o mode=0755 nb-empty "$d"
        done
        [ -d /var/log/journal ] && mount -t tmpfs -o mode=0755 nb-empty /var/log/journal

        # journald sends READY=1 once its sockets are bound: wait for that event.
        nb__start_recorder "$T/journald-notify.sock" "$T/journald-notify.log" journald-notify-recorder
        nb_spawn journald env NOTIFY_SOCKET="$T/journald-notify.sock" "$journald"
        NB_JOURNALD_PID=$NB_PID
        nb_wait_for_line "$T/journald-notify.log" 'READY=1' "$NB_TIMEOUT" 1 "$NB_JOURNALD_PID" >/dev/null
        [ -S /run/systemd/journal/socket ] || nb_fail "journald is ready but /run/systemd/journal/socket is missing"
        export NB_JOURNAL_DIR NB_JOURNALD_PID
}

# The journal's entries as JSON, one per line, after making journald write out
# everything received so far. Arguments are journalctl matches and options, e.g.
#   nb_journal_json SYSLOG_IDENTIFIER=notebookd MESSAGE_ID=...
nb_journal_json() { # [JOURNALCTL ARGS...]
        [ -n "${NB_JOURNAL_DIR:-}" ] || nb_fail "nb_journal_json: nb_start_journald first"
        journalctl --sync
        journalctl --directory="$NB_JOURNAL_DIR" --no-pager -o json "$@"
}

# Wait until N journal entries (default 1) matching the journalctl MATCHES have a JSON
# form matching ERE (use '.' for any); prints the N-th entry's JSON. Entries already
# written count too. Fails after NB_TIMEOUT.
#   nb_wait_for_journal '"NOTEBOOK":"train-01"' 1 MESSAGE_ID=$MESSAGE_CREATE_ACCEPTED
nb_wait_for_journal() { # ERE [N [MATCHES...]]
        [ -n "${NB_JOURNAL_DIR:-}" ] || nb_fail "nb_wait_for_journal: nb_start_journald first"
        local re=$1 n=${2:-1}
        shift $(($# >= 2 ? 2 : 1))
        nb__wait_stream "$NB_TIMEOUT" "$re" "$n" \
                journalctl --directory="$NB_JOURNAL_DIR" --no-pager -o json --follow --lines=all "$@" ||
                nb_fail "no journal entry matching /$re/ (x$n)${*:+ among $*} within ${NB_TIMEOUT}s"
}

# Extract the MESSAGE_IDs defined in daemon/messages.h: "NAME ID" lines.
nb_message_ids() {
        sed -n 's/^#define \(MESSAGE_[A-Z_]*\) *"\([0-9a-f]\{32\}\)".*/\1 \2/p' "$NB_SRCDIR/daemon/messages.h"
}

# ---- the emulator ----

# Start $EMULATOR on a free loopback port with extra ARGS; waits until it says
# "listening on 127.0.0.1:PORT" and exports NB_EMULATOR_URL=http://127.0.0.1:PORT and
# NB_EMULATOR_PID. Its output is in $T/emulator.log (emulator-2.log for a second one).
nb_start_emulator() { # ARGS...
        [ -x "$EMULATOR" ] || nb_fail "$EMULATOR missing: run make"
        local name=emulator line port
        local others=("$T"/emulator*.log)
        [ -e "${others[0]}" ] && name=emulator-$((${#others[@]} + 1))
        nb_spawn "$name" "$EMULATOR" --listen 127.0.0.1:0 "$@"
        NB_EMULATOR_PID=$NB_PID
        line=$(nb_wait_for_line "$T/$name.log" 'listening on 127\.0\.0\.1:[0-9]+' "$NB_TIMEOUT" 1 "$NB_EMULATOR_PID")
        port=$(printf '%s\n' "$line" | sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p')
        [ -n "$port" ] || nb_fail "cannot read the emulator's port from: $line"
        NB_EMULATOR_URL=http://127.0.0.1:$port
        export NB_EMULATOR_URL NB_EMULATOR_PID
}

# ---- shared by the tests that drive the emulator and the daemon ----

# The emulator's counters (GET /_emulator/stats), as JSON on stdout.
nb_emulator_stats() { curl -fsS "$NB_EMULATOR_URL/_emulator/stats"; }

# Change the emulator's runtime settings: nb_emulator_config 'slow_ms=0&throttle_rate=0'.
nb_emulator_config() { curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/config?$1" >/dev/null; }

# `notebookd once` on MANIFESTS with the state directory STATE against the emulator,
# signing with the test's $AK/$SK for $PROJECT (the caller's environment credentials are
# not used); the config is $T/config.yaml, an empty one when the test wrote none. The
# timeout only turns a hang into a failure.
nb_once() { # MANIFESTS STATE [OPTION...]
        local m=$1 s=$2
        shift 2
        [ -e "$T/config.yaml" ] || : >"$T/config.yaml"
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
                timeout 900 "$NOTEBOOKD" -c "$T/config.yaml" -m "$m" -s "$s" -e "$NB_EMULATOR_URL" \
                -p "$PROJECT" --log-target=console "$@" once
}

# The smallest valid manifest for NAME, written to FILE.
nb_write_manifest() { # FILE NAME
        printf 'name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' "$2" >"$1"
}

# Wait until journal entries matching MATCHES whose JSON matches ERE carry N distinct
# NOTEBOOK values (a notebook may have more than one such entry). Event-driven (follows
# the journal); NB_TIMEOUT only turns a hang into a failure.
nb_wait_journal_names() { # N ERE MATCHES...
        local n=$1 re=$2 fd pid line k=0
        local -A seen=()
        shift 2
        exec {fd}< <(nb__bg timeout "$NB_TIMEOUT" journalctl --directory="$NB_JOURNAL_DIR" --no-pager -o json \
                --follow --lines=all "$@" 2>/dev/null)
        pid=$!
        # bash's read takes a line as soon as it is there (mawk would wait for a block)
        while [ "$k" -lt "$n" ] && IFS= read -r line <&"$fd"; do
                [[ $line =~ $re ]] || continue
                [[ $line =~ \"NOTEBOOK\":\"([^\"]*)\" ]] || continue
                [ -z "${seen[${BASH_REMATCH[1]}]:-}" ] || continue
                seen[${BASH_REMATCH[1]}]=1
                k=$((k + 1))
        done
        kill "$pid" 2>/dev/null || true
        exec {fd}<&-
        [ "$k" -ge "$n" ] || nb_fail "only $k of $n notebooks with a journal entry matching /$re/ among $* within ${NB_TIMEOUT}s"
}

# ---- request budgets (the fault tests) ----

# API requests the emulator has answered or dropped (create, list, get, delete, action;
# not /_emulator/*), from its stats.
nb_api_requests() {
        nb_emulator_stats | jq '[.by_route | (.create, .list, .get, .delete, .action) // 0] | add'
}

# Report requests sent against the minimum the work needs ("requests X, minimum Y,
# ratio R") and fail when more than BOUND were sent: the bound is what a retry storm
# breaks, not a performance target.
nb_request_budget() { # ACTUAL MINIMUM BOUND [WHAT]
        local actual=$1 min=$2 bound=$3 what=${4:-API requests}
        nb_step "$what: requests $actual, minimum $min, ratio $(awk -v a="$actual" -v m="$min" 'BEGIN { printf "%.2f", a / m }')"
        [ "$actual" -ge "$min" ] || nb_fail "$what: $actual requests, fewer than the minimum $min: the count is wrong"
        [ "$actual" -le "$bound" ] || nb_fail "$what: $actual requests, more than the bound $bound (minimum $min)"
}
