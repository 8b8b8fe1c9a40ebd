#!/bin/bash
# The system test's checks, run inside the container by notebookd-system-test.service
# once systemd (PID 1) has booted it: notebookd installed from its Debian package
# (apt-get install ./notebookd_*.deb), started, reloaded and stopped with systemctl,
# observed with journalctl, against the emulator on loopback; then two instances of
# notebookd@.service against two more emulators, and an upgrade to a rebuilt package. One "PASS name" or "FAIL name: why" line per check, to the console and to
# RESULTS/results.txt; then "END", and the exit status (0: all passed) in
# RESULTS/exit-status and as this unit's status, which ends the container.
#
# Waits are for events (a journal entry, a notification PID 1 logged), each with a
# generous bound that only turns a hang into a FAIL.
# Assertions are functions called through check(), which shellcheck cannot see.
# shellcheck disable=SC2317
set -uo pipefail
R=${1:-/system-test-results}
OUT=$R/results.txt
: >"$OUT"
D=/opt/notebookd-system-test
# shellcheck source=/dev/null
. "$D/env" # TEST_PROJECT, TEST_SANITIZE, TEST_VERSION, TEST_NEXT_VERSION, TEST_INSTANCES...
# The MESSAGE_IDs the daemon is built with: MSG_STARTED=0b0b..., MSG_CREATE_ACCEPTED=...
eval "$(sed -n 's/^#define MESSAGE_\([A-Z_]*\) *"\([0-9a-f]\{32\}\)".*/MSG_\1=\2/p' "$D/messages.h")"
CONF=/etc/notebookd/notebookd.yaml
MAN=/etc/notebookd/manifests
CATALOG=/usr/lib/systemd/catalog/notebookd.catalog
UNIT=notebookd.service
NB=/usr/bin/notebookd # where the package puts it

passed=0 failed=0
result() { echo "$1" >>"$OUT"; echo "$1"; }
pass() { result "PASS $1"; passed=$((passed + 1)); }
fail() { result "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
oneline() { printf '%s' "$1" | tail -n 6 | tr -s '\n\t' '  ' | cut -c1-500; }
# check NAME COMMAND...: COMMAND asserts; when it fails, its output says why.
check() {
        local name=$1 out
        shift
        if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(oneline "$out")"; fi
}

# ---- journal helpers ----
# A mark is the sequence number of the journal's latest entry: later entries have larger
# ones. (Not journalctl --after-cursor: with matches, it skips the first matching entry
# when the cursor's own entry does not match.)
SEQ_RE='"__CURSOR" *: *"[^"]*;i=([0-9a-f]+);'
mark() {
        local c
        c=$(journalctl -q --no-pager -n 1 -o json)
        [[ $c =~ $SEQ_RE ]] && echo $((16#${BASH_REMATCH[1]}))
}
after() { # MARK: the JSON entries on stdin written after it
        local line
        while IFS= read -r line; do
                [[ $line =~ $SEQ_RE ]] && ((16#${BASH_REMATCH[1]} > $1)) && printf '%s\n' "$line"
        done
        return 0
}
# await [-u] N SECONDS MARK REGEX MATCHES...: wait for the N-th journal entry after MARK
# that MATCHES select (journalctl -f -o json) and whose JSON matches REGEX. The seconds
# only bound a hang. -u: give up early once notebookd is not active (an entry it has not
# written yet will not come).
await() {
        local alive=0
        [ "$1" = -u ] && alive=1 && shift
        local n=$1 secs=$2 since=$3 re=$4 got=0 line fd pid rc
        shift 4
        exec {fd}< <(exec timeout "$secs" journalctl -q --no-pager -f -n all -o json "$@" 2>&1)
        pid=$!
        while [ "$got" -lt "$n" ]; do
                IFS= read -r -t 2 -u "$fd" line
                rc=$?
                if [ "$rc" -gt 128 ]; then # no entry for 2s: still worth waiting?
                        [ "$alive" = 1 ] && ! systemctl -q is-active "$UNIT" && break
                        continue
                fi
                [ "$rc" -eq 0 ] || break # journalctl ended: the bound was reached
                [[ $line =~ $SEQ_RE ]] && ((16#${BASH_REMATCH[1]} > since)) && [[ $line =~ $re ]] && got=$((got + 1))
        done
        kill "$pid" 2>/dev/null
        exec {fd}<&-
        [ "$got" -ge "$n" ] && return 0
        echo "saw $got of $n entries matching /$re/ after mark $since (journalctl $*)"
        [ "$alive" = 1 ] && ! systemctl -q is-active "$UNIT" &&
                echo "notebookd is $(systemctl show -p ActiveState,Result --value "$UNIT" | tr '\n' ' ')"
        return 1
}
# PID 1 (at debug level) logs every notification it gets from a service's processes.
notifications() { # PID MARK: what PID sent after MARK, one message a line
        journalctl -q --no-pager -o json _PID=1 "UNIT=$UNIT" | after "$2" | jq -r .MESSAGE |
                sed -n "s/^\(.*: \)\{0,1\}Got notification message from PID $1 (\(.*\))$/\2/p"
}
await_notification() { # [-u] PID MARK REGEX
        local u=()
        [ "$1" = -u ] && u=(-u) && shift
        [ "${1:-0}" != 0 ] || { echo "notebookd had no main process"; return 1; }
        await "${u[@]}" 1 60 "$2" "Got notification message from PID $1 \\(.*$3" _PID=1 "UNIT=$UNIT"
}
await_pid1() { # MARK REGEX: a message of PID 1's about the unit
        await 1 60 "$1" "$2" _PID=1 "UNIT=$UNIT"
}
await_deactivated() { # MARK: PID 1's "Deactivated successfully" (SD_MESSAGE_UNIT_SUCCESS)
        await 1 60 "$1" '' _PID=1 "UNIT=$UNIT" MESSAGE_ID=7ad2d189f7e94e70a38c781354912448
}
entries() { # MARK MATCHES...: the daemon's own entries (JSON lines) after MARK
        local since=$1
        shift
        journalctl -q --no-pager -o json _SYSTEMD_UNIT="$UNIT" "$@" | after "$since"
}
unit_state() { systemctl show -p ActiveState,SubState --value "$UNIT" | tr '\n' ' ' | sed 's/ $//'; }

E= # the emulator's base URL
stats() { curl -sf "$E/_emulator/stats"; }
# assert_stats JQ-CONDITION: the emulator's counters satisfy it.
assert_stats() {
        local s
        s=$(stats) || { echo "GET $E/_emulator/stats failed"; return 1; }
        jq -e "$1" <<<"$s" >/dev/null && return 0
        echo "emulator stats do not satisfy $1: $(jq -c '{creates: (.creates | del(.by_name)), live: .instances.live,
                violations: .protocol_violations.total, recent: .recent_violations}' <<<"$s")"
        return 1
}

# ---- the package: installed as an operator would, before any credentials exist ----
apt_install() { # DIR: apt-get install ./notebookd_*.deb from DIR; its output in $R/apt-DIR.txt
        local out rc
        out=$(cd "$1" && DEBIAN_FRONTEND=noninteractive apt-get install -y ./notebookd_*.deb 2>&1)
        rc=$?
        printf '%s\n' "$out" >"$R/apt-${1##*/}.txt"
        [ "$rc" -eq 0 ] || { echo "apt-get install failed ($rc): $out"; return 1; }
        printf '%s\n' "$out"
}
a_installed() {
        local out v
        out=$(apt_install "$D/deb") || { echo "$out"; return 1; }
        v=$(dpkg-query -W -f '${Status} ${Version}' notebookd)
        [ "$v" = "install ok installed $TEST_VERSION" ] || { echo "dpkg-query: $v"; return 1; }
        grep -q '^notebookd: enabled, but not started: it has no credentials yet' <<<"$out" ||
                { echo "no postinst message about credentials in: $out"; return 1; }
        grep -q 'install -m 0600 /dev/null /etc/notebookd/credentials/ak' <<<"$out" ||
                { echo "the postinst message does not say how to add the AK: $out"; return 1; }
}
check "apt-get install ./notebookd_${TEST_VERSION}_*.deb; the postinst says how to add credentials" a_installed
a_files() {
        local f
        for f in "$NB" /lib/systemd/system/notebookd.service /lib/systemd/system/notebookd@.service \
                "$CATALOG" /usr/share/man/man8/notebookd.8.gz "$CONF"; do
                [ -f "$f" ] || { echo "not installed: $f"; return 1; }
        done
        dpkg-query -W -f '${Conffiles}\n' notebookd | grep -q "^ $CONF [0-9a-f]\{32\}" ||
                { echo "$CONF is not a conffile: $(dpkg-query -W -f '${Conffiles}' notebookd)"; return 1; }
        [ "$(stat -c %a:%U /etc/notebookd/credentials)" = 700:root ] ||
                { echo "/etc/notebookd/credentials is $(stat -c %a:%U /etc/notebookd/credentials)"; return 1; }
        man -w notebookd >/dev/null 2>&1 || [ ! -x /usr/bin/man ] || { echo "man -w notebookd finds no page"; return 1; }
}
check "the package's files: /usr/bin, both units, catalog, man page, $CONF a conffile" a_files
a_enabled_not_started() {
        local enabled started
        enabled=$(systemctl is-enabled "$UNIT")
        [ "$enabled" = enabled ] || { echo "systemctl is-enabled: $enabled"; return 1; }
        # Never started (not merely stopped again, nor failed).
        started=$(systemctl show -p ActiveState --value "$UNIT"):$(systemctl show -p Result --value "$UNIT")
        started=$started:$(systemctl show -p ExecMainStartTimestampMonotonic --value "$UNIT")
        [ "$started" = "inactive:success:0" ] || { echo "ActiveState:Result:start time: $started"; return 1; }
}
check "notebookd.service enabled but not started without credentials" a_enabled_not_started
# The operator's part: the credentials, as the postinst message says.
install -m 0600 "$D/credentials/ak" "$D/credentials/sk" /etc/notebookd/credentials/

# ---- the installation ----
a_catalog() {
        local listed id missing=()
        listed=$(journalctl --no-pager --list-catalog) || return 1
        for id in $(set | sed -n 's/^MSG_[A-Z_]*=\([0-9a-f]\{32\}\)$/\1/p'); do
                grep -q "^$id " <<<"$listed" || missing+=("$id")
        done
        [ ${#missing[@]} -eq 0 ] || { echo "MESSAGE_IDs not in journalctl --list-catalog: ${missing[*]}"; return 1; }
}
check "catalog compiled at install (systemd's dpkg trigger): journalctl --list-catalog lists every MESSAGE_ID" a_catalog

a_unit() {
        local exec_start
        exec_start=$(systemctl show -p ExecStart --value "$UNIT")
        [[ $exec_start == *"path=$NB ;"* ]] || { echo "ExecStart is not $NB: $exec_start"; return 1; }
        systemd-analyze verify --man=no "$UNIT" 2>&1 | tee /dev/stderr | grep -q . && return 1
        return 0
}
check "systemd loads the installed unit; systemd-analyze verify is silent" a_unit

# ---- the emulator: a service on loopback; its first stdout line is its address ----
AK=$(cat /etc/notebookd/credentials/ak) SK=$(cat /etc/notebookd/credentials/sk)
# --description: the default, the command line, would put the key in the journal.
coproc EMU { exec systemd-run --quiet --pipe --unit=modelarts-emulator \
        --description="ModelArts emulator (system test)" "$D/modelarts-emulator" --listen 127.0.0.1:0 \
        --project-id "$TEST_PROJECT" --ak "$AK" --sk "$SK" --seed 1 --log 2>"$R/emulator.log"; }
unset AK SK
if IFS= read -r -t 60 line <&"${EMU[0]}" && [[ $line =~ ^listening\ on\ (127\.0\.0\.1:[0-9]+)$ ]]; then
        E=http://${BASH_REMATCH[1]}
        check "emulator running as modelarts-emulator.service on $E" \
                sh -c "systemctl -q is-active modelarts-emulator && curl -sf $E/_emulator/health"
else
        fail "emulator running as modelarts-emulator.service" "no 'listening on' line: $(oneline "$(cat "$R/emulator.log")")"
fi

# The operator's part: the installed example config, filled in.
printf '\n# system test: the local emulator\nendpoint: %s\nproject_id: %s\n' "$E" "$TEST_PROJECT" >>"$CONF"
mapfile -t NAMES < <(sed -n 's/^name: *\([A-Za-z0-9_-]*\).*/\1/p' "$MAN"/*.yaml)
check "notebookd check accepts the config and the ${#NAMES[@]} manifests" "$NB" check

# ---- start ----
# PID 1 at debug level logs every sd_notify message it gets (RELOADING=1, STOPPING=1...),
# but not while it starts the service: its forked child would log too, and journald,
# which caches what it knows of a PID for a while, would then file the daemon's first
# entries under that child (_SYSTEMD_UNIT=init.scope, _COMM=(otebookd)).
m_start=$(mark)
if out=$(systemctl start "$UNIT" 2>&1); then
        # For Type=notify the start job ends when READY=1 arrives: that is the proof.
        check "systemctl start notebookd returns (Type=notify: once READY=1 arrived)" \
                sh -c "[ \"\$(systemctl show -p Type --value $UNIT)\" = notify ]"
else
        fail "systemctl start notebookd" "$(oneline "$out $(journalctl -q --no-pager -u "$UNIT" -n 6 -o cat)")"
fi
systemctl log-level debug
MAINPID=$(systemctl show -p MainPID --value "$UNIT")
SVC_UID=$(systemctl show -p UID --value "$UNIT")
SVC_GID=$(systemctl show -p GID --value "$UNIT")
check "notebookd is active (running)" sh -c "[ '$(unit_state)' = 'active running' ] || { echo '$(unit_state)'; exit 1; }"
check "a 'started' journal entry (MESSAGE_ID=$MSG_STARTED)" \
        await -u 1 30 "$m_start" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_STARTED"

# ---- the sandbox took effect and the daemon works inside it ----
a_process() {
        local st uid want
        st=$(cat "/proc/$MAINPID/status") || { echo "no process $MAINPID"; return 1; }
        uid=$(awk '/^Uid:/ { print $2 }' <<<"$st")
        { [ "$uid" != 0 ] && [ "$uid" = "$SVC_UID" ]; } || { echo "uid $uid, unit's dynamic UID '$SVC_UID'"; return 1; }
        for want in 'NoNewPrivs:	1' 'Seccomp:	2' 'CapEff:	0000000000000000' 'CapBnd:	0000000000000000'; do
                grep -qx "$want" <<<"$st" || { echo "/proc/$MAINPID/status lacks '$want'"; return 1; }
        done
}
check "DynamicUser= (uid $SVC_UID), NoNewPrivileges=, seccomp, no capabilities" a_process
a_mounts() { # as root in the service's mount namespace: what is mounted read-only
        local in="nsenter -t $MAINPID -m --" out p
        for p in /usr/.probe /etc/.probe /home/.probe /root/.probe; do
                out=$($in touch "$p" 2>&1) && { $in rm -f "$p"; echo "$p is writable in the service"; return 1; }
                [[ $out == *"Read-only file system"* ]] || { echo "touch $p: $out"; return 1; }
        done
        [ "$($in stat -c %d:%i /tmp)" != "$(stat -c %d:%i /tmp)" ] || { echo "/tmp is not private"; return 1; }
}
check "ProtectSystem=strict, ProtectHome=read-only, PrivateTmp= (the service's mounts)" a_mounts
a_as_service() { # as the service's user, in its user and mount namespaces
        local as="nsenter -t $MAINPID -U -m -S $SVC_UID -G $SVC_GID --" p
        for p in /etc/notebookd/.probe /etc/notebookd/manifests/.probe /var/lib/private/.probe; do
                $as touch "$p" 2>/dev/null && { rm -f "$p"; echo "the service can write $p"; return 1; }
        done
        $as cat /etc/notebookd/credentials/sk >/dev/null 2>&1 && { echo "the service can read the credential sources"; return 1; }
        $as sh -c 'test -r "/run/credentials/notebookd.service/ak" && test -r /run/credentials/notebookd.service/sk' ||
                { echo "the service cannot read its credentials in /run/credentials/notebookd.service"; return 1; }
        $as sh -c 'touch /var/lib/notebookd/.probe && rm /var/lib/notebookd/.probe' ||
                { echo "the service cannot write its state directory"; return 1; }
}
check "the service's user: writes only its state, reads credentials only via LoadCredential=" a_as_service

# ---- the instances get created ----
check "${#NAMES[@]} 'create accepted' entries (${NAMES[*]})" \
        await -u "${#NAMES[@]}" 120 "$m_start" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_CREATE_ACCEPTED"
check "emulator: ${#NAMES[@]} created, no duplicate, no protocol violation" \
        assert_stats ".creates.created == ${#NAMES[@]} and .creates.duplicates == 0 and
                .protocol_violations.total == 0 and .instances.live == ${#NAMES[@]}"
a_structured() {
        local n e
        for n in "${NAMES[@]}"; do
                e=$(entries 0 MESSAGE_ID="$MSG_CREATE_ACCEPTED" NOTEBOOK="$n" | head -n 1)
                [ -n "$e" ] || { echo "no create-accepted entry with NOTEBOOK=$n"; return 1; }
                jq -e --arg n "$n" --arg id "$MSG_CREATE_ACCEPTED" '._TRANSPORT == "journal" and .MESSAGE_ID == $id
                        and .NOTEBOOK == $n and (.INSTANCE_ID | test("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))
                        and (.PRIORITY | test("^[0-7]$")) and (.MESSAGE | contains($n))' <<<"$e" >/dev/null ||
                        { echo "entry for $n lacks a field: $(jq -c '{_TRANSPORT, MESSAGE_ID, NOTEBOOK, INSTANCE_ID, PRIORITY, MESSAGE}' <<<"$e")"; return 1; }
        done
}
check "journalctl -o json: structured entries (MESSAGE_ID, NOTEBOOK, INSTANCE_ID, PRIORITY)" a_structured
a_history() {
        local n=${NAMES[0]} out
        out=$(journalctl -q --no-pager -u notebookd NOTEBOOK="$n" -o json)
        [ -n "$out" ] || { echo "journalctl -u notebookd NOTEBOOK=$n shows nothing"; return 1; }
        jq -se --arg n "$n" --arg sent "$MSG_CREATE_SENT" --arg acc "$MSG_CREATE_ACCEPTED" \
                'all(.NOTEBOOK == $n) and any(.MESSAGE_ID == $sent) and any(.MESSAGE_ID == $acc)' <<<"$out" >/dev/null ||
                { echo "journalctl -u notebookd NOTEBOOK=$n: $(jq -c '[.MESSAGE_ID, .NOTEBOOK]' <<<"$out" | tr '\n' ' ')"; return 1; }
}
check "journalctl -u notebookd NOTEBOOK=${NAMES[0]}: that notebook's history (create sent, accepted)" a_history
check "${#NAMES[@]} 'status changed' entries with STATUS=RUNNING" \
        await -u "${#NAMES[@]}" 120 "$m_start" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_STATUS_CHANGED" STATUS=RUNNING

a_catalog_x() { # journalctl -x explains the entries with the catalog's text
        local x id subject
        x=$(journalctl -q --no-pager -x -u notebookd) || return 1
        for id in "$MSG_STARTED" "$MSG_CREATE_ACCEPTED"; do
                subject=$(sed -n "/^-- $id\$/,/^Subject:/ s/^Subject: \([^@]*\).*/\1/p" "$CATALOG")
                [ -n "$subject" ] || { echo "no Subject for $id in $CATALOG"; return 1; }
                grep -qF "Subject: $subject" <<<"$x" || { echo "journalctl -x lacks 'Subject: $subject'"; return 1; }
        done
}
check "journalctl -x shows the catalog's explanation" a_catalog_x

a_status() {
        local table json n id
        table=$("$NB" status) || { echo "notebookd status failed: $table"; return 1; }
        json=$("$NB" status --json) || { echo "notebookd status --json failed: $json"; return 1; }
        for n in "${NAMES[@]}"; do
                grep -q "^$n " <<<"$table" || { echo "status table lacks $n: $table"; return 1; }
                id=$(entries 0 MESSAGE_ID="$MSG_CREATE_ACCEPTED" NOTEBOOK="$n" | head -n 1 | jq -r .INSTANCE_ID)
                jq -e --arg n "$n" --arg id "$id" 'any(.instances[]; .name == $n and .instance_id == $id and .status == "RUNNING")' \
                        <<<"$json" >/dev/null || { echo "status --json: $n is not RUNNING as $id: $json"; return 1; }
        done
}
check "notebookd status (root, beside the running service): every instance RUNNING, ids as logged" a_status

a_state() {
        [ "$(readlink /var/lib/notebookd)" = private/notebookd ] ||
                { echo "/var/lib/notebookd -> '$(readlink /var/lib/notebookd)' (DynamicUser= makes it private/notebookd)"; return 1; }
        local db=/var/lib/private/notebookd/notebookd.db
        [ -f "$db" ] || { echo "no $db"; return 1; }
        [ "$(stat -c %u "$db")" = "$SVC_UID" ] || { echo "$db owned by $(stat -c %u "$db"), not $SVC_UID"; return 1; }
        [ "$(stat -c %a /var/lib/private/notebookd)" = 700 ] || { echo "state directory mode $(stat -c %a /var/lib/private/notebookd)"; return 1; }
}
check "state in /var/lib/notebookd (StateDirectory=), owned by the dynamic user" a_state

# ---- the running service reacts to the manifests directory ----
m_late=$(mark)
late="late-arrival"
printf 'name: %s\nprofile_id: Python3\ndescription: Added while the service runs\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' \
        "$late" >/etc/notebookd/.late.yaml.tmp
mv /etc/notebookd/.late.yaml.tmp "$MAN/late.yaml" # moved in, as a checkout would
check "a manifest moved in while running is created (NOTEBOOK=$late)" \
        await -u 1 60 "$m_late" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_CREATE_ACCEPTED" NOTEBOOK=$late
# Broken where a client can know it: volume_size out of range, at line 8, column 20 (a
# flavor no one knows is the cloud's to refuse, so it would be sent).
printf 'name: broken-one\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n    location:\n      volume_size: 9999\n' >"$MAN/broken.yaml"
check "an invalid manifest written while running is logged" \
        await -u 1 60 "$m_late" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_MANIFEST_INVALID" CONFIG_FILE="$MAN/broken.yaml"
a_invalid_entry() {
        local e
        e=$(entries "$m_late" MESSAGE_ID="$MSG_MANIFEST_INVALID" CONFIG_FILE="$MAN/broken.yaml" | tail -n 1)
        [ -n "$e" ] || { echo "no entry"; return 1; }
        jq -e '.CONFIG_LINE == "8" and .CONFIG_COLUMN == "20" and (.PRIORITY | tonumber) <= 4' <<<"$e" >/dev/null ||
                { echo "entry: $(jq -c '{CONFIG_FILE, CONFIG_LINE, CONFIG_COLUMN, PRIORITY, MESSAGE}' <<<"$e")"; return 1; }
        assert_stats '.creates.by_name["broken-one"] == null'
}
check "... with its position (CONFIG_LINE=8 CONFIG_COLUMN=20), and never sent" a_invalid_entry
check "STATUS= kept current: 5 desired, 1 invalid manifest" \
        await_notification -u "$MAINPID" "$m_late" 'STATUS=5 desired, .*1 invalid manifest'

# ---- the watchdog: WatchdogSec=30s, sd-event pings within half of it ----
check "WatchdogSec=30s in effect" sh -c "[ \"\$(systemctl show -p WatchdogUSec --value $UNIT)\" = 30s ]"
m_watchdog=$(mark) # PID 1 logs notifications from here on
check "PID 1 got WATCHDOG=1" await_notification -u "$MAINPID" "$m_watchdog" 'WATCHDOG=1'

# ---- reload: RELOADING=1, re-read everything, READY=1; same process ----
m_reload=$(mark)
check "systemctl reload notebookd" systemctl reload "$UNIT"
check "PID 1 got READY=1 after the reload" await_notification -u "$MAINPID" "$m_reload" 'READY=1'
a_reloaded() {
        local seq
        seq=$(notifications "$MAINPID" "$m_reload" | grep -o '\b\(RELOADING\|READY\)=1\b' | tr '\n' ' ')
        [[ $seq == "RELOADING=1 READY=1"* ]] || { echo "notifications after the reload: '$seq'"; return 1; }
        [ -n "$(entries "$m_reload" MESSAGE_ID="$MSG_RELOAD")" ] || { echo "no reload entry"; return 1; }
        [ "$(systemctl show -p MainPID --value "$UNIT")" = "$MAINPID" ] || { echo "the main PID changed"; return 1; }
        [ "$(unit_state)" = "active running" ] || { unit_state; return 1; }
}
check "reload: RELOADING=1 then READY=1, a reload entry, same process, still running" a_reloaded

# A broken config on reload: the old one stays in effect and the journal says why.
cp "$CONF" "$R/notebookd.yaml.good"
printf 'no_such_key: 1\n' >>"$CONF"
m_bad=$(mark)
check "reload with a broken config: systemctl reload returns" systemctl reload "$UNIT"
check "... a 'config invalid' entry names the file" \
        await -u 1 60 "$m_bad" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_CONFIG_INVALID" CONFIG_FILE="$CONF"
check "... READY=1 again: it keeps running on the old config" await_notification -u "$MAINPID" "$m_bad" 'READY=1'
check "... same process, still running" sh -c "[ \"\$(systemctl show -p MainPID --value $UNIT)\" = $MAINPID ] &&
        systemctl -q is-active $UNIT"
cp "$R/notebookd.yaml.good" "$CONF"
m_fixed=$(mark)
systemctl reload "$UNIT" && await_notification -u "$MAINPID" "$m_fixed" 'READY=1' >/dev/null

# ---- stop: STOPPING=1, exit 0 ----
# (A stopped unit may be unloaded at once, so its Result= and ExecMain*= properties are
# no evidence; PID 1's own messages are: "Deactivated successfully" only for Result=success.)
m_stop=$(mark)
check "systemctl stop notebookd" systemctl stop "$UNIT"
check "PID 1 got STOPPING=1" await_notification "$MAINPID" "$m_stop" 'STOPPING=1'
check "main process exited with status 0 (PID 1: code=exited, status=0/SUCCESS)" \
        await_pid1 "$m_stop" 'Main process exited, code=exited, status=0/SUCCESS'
check "... Result=success (PID 1: Deactivated successfully)" await_deactivated "$m_stop"
check "... and the unit is inactive, not failed" sh -c "[ \"\$(systemctl show -p ActiveState --value $UNIT)\" = inactive ]"
check "a 'stopping' journal entry" await 1 30 "$m_stop" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_STOPPING"
a_status_after_stop() {
        local json
        json=$("$NB" status --json) || { echo "notebookd status --json failed: $json"; return 1; }
        jq -e --argjson n $((${#NAMES[@]} + 1)) '.instances | length == $n' <<<"$json" >/dev/null ||
                { echo "expected $((${#NAMES[@]} + 1)) instances: $json"; return 1; }
}
check "notebookd status after the stop: $((${#NAMES[@]} + 1)) instances recorded" a_status_after_stop

# ---- start again: the recorded state is used, nothing is created twice ----
systemctl log-level info # as for the first start
m_again=$(mark)
check "systemctl start notebookd again" systemctl start "$UNIT"
check "... its first pass finishes" \
        await -u 1 60 "$m_again" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_PASS_FINISHED"
check "... and creates nothing: emulator still at $((${#NAMES[@]} + 1)) created, no duplicate" \
        assert_stats ".creates.created == $((${#NAMES[@]} + 1)) and .creates.duplicates == 0 and
                .creates.requests == $((${#NAMES[@]} + 1)) and .protocol_violations.total == 0"
MAINPID=$(systemctl show -p MainPID --value "$UNIT")
m_stop=$(mark)
check "systemctl stop notebookd again" systemctl stop "$UNIT"
check "... Result=success (PID 1: Deactivated successfully)" await_deactivated "$m_stop"

# ---- several projects on one host: two instances of notebookd@.service at once ----
# Each has its own emulator (its own project and key pair: an instance signing with the
# other's keys, or listing the other's project, would be refused), config
# /etc/notebookd/NAME.yaml, manifests and credentials /etc/notebookd/credentials/NAME/.
read -r -a INSTANCES <<<"$TEST_INSTANCES"
declare -A EURL IPROJ INAMES
inst_unit() { echo "notebookd@$1.service"; }
start_emulator() { # UNIT PROJECT AK SK: the base URL, once its "listening on" line is in the journal
        local m
        m=$(mark)
        systemd-run --quiet --unit="$1" --description="ModelArts emulator $1 (system test)" \
                "$D/modelarts-emulator" --listen 127.0.0.1:0 --project-id "$2" --ak "$3" --sk "$4" --seed 1 ||
                return 1
        await 1 60 "$m" '"listening on 127\.0\.0\.1:' _SYSTEMD_UNIT="$1.service" >/dev/null || return 1
        journalctl -q --no-pager -o cat _SYSTEMD_UNIT="$1.service" |
                sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\)$/http:\/\/\1/p' | tail -n 1
}
i=0
for name in "${INSTANCES[@]}"; do
        i=$((i + 1))
        pvar=TEST_PROJECT_$i
        IPROJ[$name]=${!pvar}
        url=$(start_emulator "emulator-$name" "${IPROJ[$name]}" "$(cat "$D/credentials/$name/ak")" \
                "$(cat "$D/credentials/$name/sk")")
        if [ -n "$url" ] && curl -sf "$url/_emulator/health" >/dev/null; then
                EURL[$name]=$url
                pass "emulator for $name running on $url"
        else
                fail "emulator for $name" "no 'listening on' line in the journal of emulator-$name.service"
        fi
        # The operator's part, as the README says: credentials, a manifests checkout, config.
        install -d -m 0700 "/etc/notebookd/credentials/$name"
        install -m 0600 "$D/credentials/$name/ak" "$D/credentials/$name/sk" "/etc/notebookd/credentials/$name/"
        install -d "/srv/notebooks/$name"
        names=()
        for n in $(seq "$((3 - i))"); do # 2 notebooks for the first instance, 1 for the second
                names+=("$name-$n")
                printf 'name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' \
                        "$name-$n" >"/srv/notebooks/$name/$n.yaml"
        done
        INAMES[$name]=${names[*]}
        printf '# system test: notebookd@%s\nendpoint: %s\nproject_id: %s\nmanifests: /srv/notebooks/%s\n' \
                "$name" "${EURL[$name]:-http://127.0.0.1:9}" "${IPROJ[$name]}" "$name" >"/etc/notebookd/$name.yaml"
done
units=()
for name in "${INSTANCES[@]}"; do units+=("$(inst_unit "$name")"); done
m_inst=$(mark)
check "systemctl start ${units[*]} (both at once, Type=notify)" systemctl start "${units[@]}"
a_instance_running() { # NAME
        local u st
        u=$(inst_unit "$1")
        st=$(systemctl show -p ActiveState,SubState --value "$u" | tr '\n' ' ')
        [ "$st" = "active running " ] || { echo "$u: $st $(journalctl -q --no-pager -u "$u" -n 5 -o cat | tr '\n' ' ')"; return 1; }
}
a_instance_converged() { # NAME: its emulator created exactly its notebooks, each once
        local name=$1 want s
        want=$(tr ' ' '\n' <<<"${INAMES[$name]}" | sort | jq -Rsc 'split("\n") | map(select(. != ""))')
        s=$(curl -sf "${EURL[$name]}/_emulator/stats") || { echo "no stats from ${EURL[$name]}"; return 1; }
        jq -e --argjson want "$want" '(.creates.by_name | keys) == $want and .creates.created == ($want | length)
                and .creates.duplicates == 0 and .protocol_violations.total == 0' <<<"$s" >/dev/null ||
                { echo "emulator of $name, want $want: $(jq -c '{creates, violations: .protocol_violations.total}' <<<"$s")"; return 1; }
}
a_instance_state() { # NAME: its own state directory, owned by its own dynamic user, and status
        local name=$1 u uid db json got want
        u=$(inst_unit "$name")
        uid=$(systemctl show -p UID --value "$u")
        db=/var/lib/private/notebookd@$name/notebookd.db
        [ -f "$db" ] || { echo "no $db: $(find /var/lib/private /var/lib/notebookd* -maxdepth 1 -printf '%p %u %m; ' 2>&1)"; return 1; }
        [ "$(stat -c %u "$db")" = "$uid" ] || { echo "$db owned by $(stat -c %u "$db"), $u runs as $uid"; return 1; }
        json=$("$NB" -c "/etc/notebookd/$name.yaml" -s "/var/lib/notebookd@$name" status --json) ||
                { echo "notebookd status for $name failed: $json"; return 1; }
        got=$(jq -r '[.instances[].name] | sort | join(" ")' <<<"$json")
        want=$(tr ' ' '\n' <<<"${INAMES[$name]}" | sort | tr '\n' ' ' | sed 's/ $//')
        [ "$got" = "$want" ] || { echo "status of $name lists '$got', not '$want'"; return 1; }
}
a_instance_journal() { # NAME: journalctl -u shows this project only, every entry says which instance
        local name=$1 u out want
        u=$(inst_unit "$name")
        want=$(tr ' ' '\n' <<<"${INAMES[$name]}" | jq -Rsc 'split("\n") | map(select(. != ""))')
        out=$(journalctl -q --no-pager -u "$u" -o json)
        jq -se --argjson want "$want" '[.[] | select(.NOTEBOOK) | .NOTEBOOK] | unique == ($want | sort)' <<<"$out" >/dev/null ||
                { echo "journalctl -u $u shows NOTEBOOK= $(jq -sc '[.[] | select(.NOTEBOOK) | .NOTEBOOK] | unique' <<<"$out"), want $want"; return 1; }
        out=$(journalctl -q --no-pager -o json _SYSTEMD_UNIT="$u")
        jq -se --arg n "$name" 'length > 0 and all(.NOTEBOOKD_INSTANCE == $n)' <<<"$out" >/dev/null ||
                { echo "entries of $u without NOTEBOOKD_INSTANCE=$name: $(jq -c 'select(.NOTEBOOKD_INSTANCE != $n) | .MESSAGE' --arg n "$name" <<<"$out" | head -n 3 | tr '\n' ' ')"; return 1; }
}
for name in "${INSTANCES[@]}"; do
        u=$(inst_unit "$name")
        read -r -a names <<<"${INAMES[$name]}"
        check "$u is active (running)" a_instance_running "$name"
        check "$u: ${#names[@]} 'create accepted' entries (${names[*]})" \
                await "${#names[@]}" 120 "$m_inst" '' _SYSTEMD_UNIT="$u" MESSAGE_ID="$MSG_CREATE_ACCEPTED"
        check "$u: its emulator created exactly its notebooks, once each, with its credentials" a_instance_converged "$name"
        check "$u: its own state (/var/lib/notebookd@$name, its own dynamic user; status lists its notebooks only)" \
                a_instance_state "$name"
        check "$u: journalctl -u shows its notebooks only, every entry NOTEBOOKD_INSTANCE=$name" a_instance_journal "$name"
done

# ---- upgrade: a rebuilt package with a higher version, everything running ----
m_up=$(mark)
systemctl start "$UNIT" && await 1 60 "$m_up" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_PASS_FINISHED" >/dev/null
declare -A OLDPID
OLDPID[$UNIT]=$(systemctl show -p MainPID --value "$UNIT")
for u in "${units[@]}"; do OLDPID[$u]=$(systemctl show -p MainPID --value "$u"); done
"$NB" status --json | jq -c '[.instances[] | {name, instance_id}] | sort_by(.name)' >"$R/status-before-upgrade.json"
created_before=$(stats | jq .creates.created)
# The databases themselves, not only what they say: a lost one would be rebuilt by
# adopting every instance from a listing, with the same records and no create.
declare -A DB_INODE
db_of() { # UNIT
        case $1 in
        "$UNIT") echo /var/lib/private/notebookd/notebookd.db ;;
        *) local n=${1#notebookd@}; echo "/var/lib/private/notebookd@${n%.service}/notebookd.db" ;;
        esac
}
for u in "$UNIT" "${units[@]}"; do DB_INODE[$u]=$(stat -c %i "$(db_of "$u")"); done
m_up=$(mark)
a_upgraded() {
        local out v
        out=$(apt_install "$D/deb-next") || { echo "$out"; return 1; }
        v=$(dpkg-query -W -f '${Status} ${Version}' notebookd)
        [ "$v" = "install ok installed $TEST_NEXT_VERSION" ] || { echo "dpkg-query: $v"; return 1; }
        v=$("$NB" --version)
        [[ $v == *"$TEST_NEXT_VERSION"* ]] || { echo "notebookd --version: $v"; return 1; }
        grep -q "^endpoint: $E\$" "$CONF" || { echo "the operator's $CONF was not kept: $(cat "$CONF")"; return 1; }
}
check "apt-get install ./notebookd_${TEST_NEXT_VERSION}_*.deb: upgraded, the operator's config kept" a_upgraded
a_restarted() { # UNIT: a new main process, which said 'started' after the upgrade began
        local u=$1 pid
        pid=$(systemctl show -p MainPID --value "$u")
        if [ "$pid" = 0 ] || [ "$pid" = "${OLDPID[$u]}" ]; then echo "$u: MainPID $pid, before the upgrade ${OLDPID[$u]}"; return 1; fi
        systemctl -q is-active "$u" || { echo "$u is not active"; return 1; }
        await 1 60 "$m_up" '' _SYSTEMD_UNIT="$u" MESSAGE_ID="$MSG_STARTED" _PID="$pid" >/dev/null ||
                { echo "no 'started' entry from $u's new process $pid"; return 1; }
        await 1 60 "$m_up" '' _SYSTEMD_UNIT="$u" MESSAGE_ID="$MSG_STOPPING" _PID="${OLDPID[$u]}" >/dev/null ||
                { echo "no 'stopping' entry from $u's old process ${OLDPID[$u]}"; return 1; }
}
check "the upgrade restarted notebookd.service (the old process stopped, a new one started)" a_restarted "$UNIT"
for u in "${units[@]}"; do check "the upgrade restarted $u too" a_restarted "$u"; done
a_state_kept() {
        local now
        await 1 60 "$m_up" '' _SYSTEMD_UNIT="$UNIT" MESSAGE_ID="$MSG_PASS_FINISHED" >/dev/null ||
                { echo "no pass finished after the upgrade"; return 1; }
        now=$("$NB" status --json | jq -c '[.instances[] | {name, instance_id}] | sort_by(.name)')
        [ "$now" = "$(cat "$R/status-before-upgrade.json")" ] ||
                { echo "records before: $(cat "$R/status-before-upgrade.json"), after: $now"; return 1; }
        assert_stats ".creates.created == $created_before and .creates.duplicates == 0" || return 1
        [ "$(stat -c %i "$(db_of "$UNIT")")" = "${DB_INODE[$UNIT]}" ] ||
                { echo "$(db_of "$UNIT") is a new file (inode ${DB_INODE[$UNIT]} before)"; return 1; }
        [ -z "$(entries "$m_up" MESSAGE_ID="$MSG_ADOPTED")" ] ||
                { echo "notebooks adopted after the upgrade, as if the state were lost"; return 1; }
}
check "the state survived the upgrade: the same database file and records, nothing created or adopted again" a_state_kept
a_instance_kept() { # NAME
        local u db
        u=$(inst_unit "$1") db=$(db_of "$(inst_unit "$1")")
        [ "$(stat -c %i "$db")" = "${DB_INODE[$u]}" ] || { echo "$db is a new file (inode ${DB_INODE[$u]} before)"; return 1; }
        a_instance_state "$1" && a_instance_converged "$1"
}
for name in "${INSTANCES[@]}"; do
        u=$(inst_unit "$name")
        check "$u after the upgrade: its first pass finishes" \
                await 1 60 "$m_up" '' _SYSTEMD_UNIT="$u" MESSAGE_ID="$MSG_PASS_FINISHED"
        check "$u after the upgrade: its state kept (the same database file), nothing created again" \
                a_instance_kept "$name"
done
m_stop=$(mark)
check "systemctl stop notebookd and its instances" systemctl stop "$UNIT" "${units[@]}"

# ---- removal keeps the state, purge alone deletes it ----
a_removed() { # apt-get remove with everything running: all stopped, the state kept
        local out u
        out=$(DEBIAN_FRONTEND=noninteractive apt-get remove -y notebookd 2>&1) || { echo "apt-get remove failed: $out"; return 1; }
        [ ! -e "$NB" ] || { echo "$NB still there"; return 1; }
        for u in "$UNIT" "${units[@]}"; do
                ! systemctl -q is-active "$u" || { echo "$u still active after the removal"; return 1; }
                [ -f "$(db_of "$u")" ] || { echo "$(db_of "$u") gone with a mere removal"; return 1; }
        done
        [ -f "$CONF" ] || { echo "$CONF gone with a mere removal"; return 1; }
}
systemctl start "$UNIT" "${units[@]}"
check "apt-get remove notebookd: the service and both instances stopped, state and config kept" a_removed
a_purged() {
        local out left
        out=$(DEBIAN_FRONTEND=noninteractive apt-get purge -y notebookd 2>&1) || { echo "apt-get purge failed: $out"; return 1; }
        left=$(find /var/lib/notebookd* /var/lib/private/notebookd* -maxdepth 0 2>/dev/null)
        [ -z "$left" ] || { echo "left after the purge: $left"; return 1; }
        [ ! -e "$CONF" ] || { echo "$CONF left after the purge"; return 1; }
        # The keys are the operator's: never deleted by the package.
        [ -f /etc/notebookd/credentials/ak ] || { echo "the purge deleted the operator's credentials"; return 1; }
        out=$(dpkg-query -W -f '${Status}' notebookd 2>&1)
        [[ $out == *not-installed* || $out == *"no packages found"* ]] || { echo "dpkg-query: $out"; return 1; }
}
check "apt-get purge notebookd: the state of the service and of every instance deleted, the credentials kept" a_purged

a_no_sanitizer_report() {
        local hits
        hits=$(journalctl -q --no-pager -b -o cat _SYSTEMD_UNIT="$UNIT" | grep -E 'Sanitizer|runtime error:' | head -n 3)
        [ -z "$hits" ] || { echo "$hits"; return 1; }
}
[ "${TEST_SANITIZE:-0}" = 1 ] && check "no ASan/UBSan/LSan report from notebookd" a_no_sanitizer_report

# ---- leave the evidence for the host, then end the container through the unit ----
systemctl log-level info
journalctl -q --no-pager -b -o short-precise >"$R/journal.txt"
journalctl -q --no-pager -b -o json _SYSTEMD_UNIT="$UNIT" >"$R/notebookd.json"
journalctl -q --no-pager -b -o json >"$R/journal.json"
[ -n "$E" ] && stats >"$R/emulator-stats.json"
echo "inside: $passed passed, $failed failed"
echo END >>"$OUT"
rc=$((failed > 0))
echo "$rc" >"$R/exit-status"
exit "$rc"
