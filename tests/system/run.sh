#!/usr/bin/env bash
# make system-test: notebookd as an operator runs it, under a real systemd as PID 1.
#
# `make install DESTDIR=` into a Debian 12 rootfs (debootstrap, cached in build/system/),
# plus the emulator, the example manifests and an AK/SK pair in /etc/notebookd/credentials;
# then `systemd-nspawn -b` boots it. Inside, notebookd-system-test.service runs
# tests/system/inside.sh after multi-user.target: it drives systemctl, journalctl and the
# emulator, writes one PASS/FAIL line per check into a bind-mounted directory and ends the
# container with its own exit status (SuccessAction=/FailureAction=exit). This script adds
# its own checks around that, echoes every line and ends with "N passed, N failed".
#
# Needs root, systemd-nspawn (package systemd-container) and debootstrap (installed with
# apt-get when missing), and the Debian archive for the first run (about a minute).
# Environment: BUILD (build or build/san), SYSTEM_TEST_MIRROR (Debian mirror; default:
# the host's apt sources for bookworm, else debootstrap's own),
# SYSTEM_TEST_REBUILD=1 (throw the cached rootfs away first), SYSTEM_TEST_DROPIN=FILE
# (installed as a drop-in for notebookd.service: weaken the unit, see the checks fail).
set -uo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.." || exit 2
SRC=$PWD

make_args=()
run_name=run
case $BUILD in */san) make_args+=(SANITIZE=1) run_name=run-san ;; esac

CACHE=build/system
BASE=$CACHE/rootfs
RUN=$CACHE/$run_name
ROOT=$RUN/root
RESULTS=$RUN/results
SUITE=bookworm
# The daemon's and the emulator's runtime libraries (ldd build/notebookd), the
# sanitizer runtimes for SANITIZE=1 builds, systemd as init, and jq/curl for inside.sh.
# No procps: the unit reloads with the shell's builtin kill, as on a minimal host.
PACKAGES=systemd,systemd-sysv,dbus,libsystemd0,libyaml-0-2,libcjson1,libcurl4,libsqlite3-0,libssl3,libmicrohttpd12,libasan8,libubsan1,jq,curl
# The test-only key pair the emulator checks signatures with; never a real credential.
TEST_AK=SYSTEMTESTAK00000001
TEST_SK=system-test-secret-key-for-the-emulator-only
TEST_PROJECT=5e1f0c2d9a8b47e6b3c4d5e6f7a8b9c0

# The mirror: SYSTEM_TEST_MIRROR, else the one this host's apt uses for $SUITE (a host
# behind its own mirror or proxy keeps using it), else debootstrap's default.
host_mirror() {
        local f line uris="" suites="" types="" found=""
        # deb822 (/etc/apt/sources.list.d/*.sources): stanzas of Types:, URIs:, Suites:.
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] || continue
                while IFS= read -r line || [ -n "$line" ]; do
                        case $line in
                        [Tt]ypes:*) types=${line#*:} ;;
                        [Uu][Rr][Ii][Ss]:*) uris=${line#*:} ;;
                        [Ss]uites:*) suites=${line#*:} ;;
                        "" | [[:space:]]*)
                                [ -z "$line" ] || [ -z "${line//[[:space:]]/}" ] || continue
                                if [[ " $types " == *" deb "* && " $suites " == *" $SUITE "* ]] && [ -n "$uris" ]; then
                                        read -r found _ <<<"$uris"
                                        break 2
                                fi
                                uris="" suites="" types="" ;;
                        esac
                done < <(cat "$f"; echo)
        done
        # One-line style: deb [options] URI SUITE COMPONENT...
        if [ -z "$found" ]; then
                found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                        sed -e 's/#.*//' -e 's/\[[^]]*\]//' |
                        awk -v s="$SUITE" '$1 == "deb" && $3 == s { print $2; exit }')
        fi
        case $found in http://* | https://* | file:/*) printf '%s\n' "$found" ;; esac
}
MIRROR=${SYSTEM_TEST_MIRROR:-$(host_mirror)}

passed=0 failed=0
pass() { echo "PASS host: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL host: $1${2:+: $2}"; failed=$((failed + 1)); }
finish() {
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        exit
}
# A step nothing after it can do without: report and stop.
fatal() { fail "$@"; finish; }

[ "$(id -u)" -eq 0 ] || fatal "prerequisites" "must run as root (debootstrap, systemd-nspawn)"
missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
        echo "system-test: installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
                fatal "prerequisites" "apt-get install ${missing[*]} failed"
fi
pass "prerequisites (root, systemd-nspawn, debootstrap)"

# ---- the cached base rootfs: rebuilt when missing or made from another package list ----
mkdir -p "$CACHE"
stamp="$SUITE minbase $PACKAGES"
exec {lock}>"$CACHE/.lock"
flock "$lock" # a concurrent run (the SANITIZE=1 one) may be building it
[ "${SYSTEM_TEST_REBUILD:-0}" = 1 ] && rm -rf "$BASE"
if [ "$(cat "$BASE/.notebookd-system-test" 2>/dev/null)" != "$stamp" ]; then
        echo "system-test: debootstrap $SUITE into $BASE (cached for the next runs)"
        rm -rf "$BASE" "$BASE.tmp"
        echo "system-test: mirror ${MIRROR:-(the default of debootstrap)}"
        # An empty MIRROR is no argument at all: debootstrap then uses its default.
        if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$BASE.tmp" ${MIRROR:+"$MIRROR"} \
                >"$CACHE/debootstrap.log" 2>&1; then
                tail -n 20 "$CACHE/debootstrap.log" | sed 's/^/    /'
                fatal "rootfs" "debootstrap failed (log: $CACHE/debootstrap.log)"
        fi
        # The test unit starts after multi-user.target; a graphical default would wait for
        # display-manager bits a minbase system does not have.
        ln -sf /lib/systemd/system/multi-user.target "$BASE.tmp/etc/systemd/system/default.target"
        printf '%s\n' "$stamp" >"$BASE.tmp/.notebookd-system-test"
        mv "$BASE.tmp" "$BASE"
fi
flock -u "$lock"
pass "rootfs ($BASE, Debian $SUITE)"

# ---- this run's rootfs: a fresh copy, then installed into as an operator would ----
rm -rf "$RUN"
mkdir -p "$RUN" "$RESULTS"
cp -a --reflink=auto "$BASE" "$ROOT" || fatal "rootfs copy" "cp -a $BASE $ROOT failed"

if ! make -s --no-print-directory "${make_args[@]}" install DESTDIR="$SRC/$ROOT" >"$RUN/install.log" 2>&1; then
        tail -n 20 "$RUN/install.log" | sed 's/^/    /'
        fatal "make install DESTDIR=$ROOT" "failed (log: $RUN/install.log)"
fi
unit=$ROOT/lib/systemd/system/notebookd.service
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" 2>/dev/null)
if [ -n "$exec_start" ] && [ -x "$ROOT$exec_start" ]; then
        pass "make install DESTDIR=$ROOT (unit's ExecStart=$exec_start is installed)"
else
        fatal "make install DESTDIR=$ROOT" "the unit's ExecStart binary '$exec_start' is not in the rootfs"
fi

# The test's own files: the emulator, the script, the MESSAGE_IDs it looks for, the unit
# that runs it at boot, and the operator's part (manifests, credentials).
T=$ROOT/opt/notebookd-system-test
install -d "$T"
install -m 0755 "$BUILD/modelarts-emulator" "$T/modelarts-emulator"
install -m 0755 tests/system/inside.sh "$T/inside.sh"
install -m 0644 daemon/messages.h "$T/messages.h"
printf 'TEST_PROJECT=%s\nTEST_SANITIZE=%s\n' "$TEST_PROJECT" "${#make_args[@]}" >"$T/env"
install -m 0644 tests/system/notebookd-system-test.service "$ROOT/etc/systemd/system/"
install -d "$ROOT/etc/systemd/system/multi-user.target.wants"
ln -sf ../notebookd-system-test.service "$ROOT/etc/systemd/system/multi-user.target.wants/"
install -m 0644 manifests/*.yaml "$ROOT/etc/notebookd/manifests/"
[ ${#make_args[@]} -gt 0 ] && install -D -m 0644 tests/system/sanitizer.conf \
        "$ROOT/etc/systemd/system/notebookd.service.d/sanitizer.conf"
if [ -n "${SYSTEM_TEST_DROPIN:-}" ]; then
        echo "system-test: notebookd.service drop-in $SYSTEM_TEST_DROPIN"
        install -D -m 0644 "$SYSTEM_TEST_DROPIN" "$ROOT/etc/systemd/system/notebookd.service.d/zz-system-test.conf"
fi
install -d -m 0700 "$ROOT/etc/notebookd/credentials"
(umask 077 && printf '%s' "$TEST_AK" >"$ROOT/etc/notebookd/credentials/ak" &&
        printf '%s' "$TEST_SK" >"$ROOT/etc/notebookd/credentials/sk")

# A missing library would only show as a unit failing with status 127 inside.
unresolved=$(chroot "$ROOT" ldd "$exec_start" /opt/notebookd-system-test/modelarts-emulator 2>&1 | grep 'not found')
if [ -z "$unresolved" ]; then
        pass "the installed binaries find their libraries in the rootfs"
else
        fail "the installed binaries find their libraries in the rootfs" "$(echo "$unresolved" | tr -s ' \t\n' ' ')"
fi

# ---- boot: systemd as PID 1 in the container; the test unit powers it off ----
# --register=no: no machined needed. Where the host's PID 1 is not systemd (no
# /run/systemd/system, as in some CI sandboxes) there is no bus to ask for a scope
# either: --keep-unit runs the container in our own cgroup. --private-network: only
# loopback inside, which is all the test uses. The timeout only ends a hung boot; a
# normal run takes well under a minute.
nspawn_args=(--quiet --register=no)
[ -d /run/systemd/system ] || nspawn_args+=(--keep-unit)
echo "system-test: booting $ROOT (console: $RUN/console.log)"
timeout -k 15 "${SYSTEM_TEST_BOOT_TIMEOUT:-600}" systemd-nspawn "${nspawn_args[@]}" \
        --private-network --machine=notebookd-systest --console=read-only \
        --bind="$SRC/$RESULTS:/system-test-results" -D "$ROOT" -b </dev/null >"$RUN/console.log" 2>&1
rc=$?

if [ -s "$RESULTS/results.txt" ]; then
        grep -E '^(PASS|FAIL) ' "$RESULTS/results.txt"
        inside_passed=$(grep -c '^PASS ' "$RESULTS/results.txt")
        inside_failed=$(grep -c '^FAIL ' "$RESULTS/results.txt")
        passed=$((passed + inside_passed)) failed=$((failed + inside_failed))
fi
if grep -qx 'END' "$RESULTS/results.txt" 2>/dev/null; then
        pass "the container booted and ran inside.sh to the end"
else
        tail -n 30 "$RUN/console.log" | sed 's/^/    /'
        fail "the container booted and ran inside.sh to the end" \
                "no END in $RESULTS/results.txt (nspawn status $rc; console: $RUN/console.log)"
fi
# inside.sh's status travels twice: written to the results and, through
# FailureAction=exit, as the container's (and so systemd-nspawn's) exit status.
inside_rc=$(cat "$RESULTS/exit-status" 2>/dev/null)
if [ "$rc" = "$inside_rc" ]; then
        pass "systemd-nspawn exited with inside.sh's status ($rc) after poweroff"
else
        fail "systemd-nspawn exited with inside.sh's status" "nspawn $rc, inside.sh '${inside_rc:-none}'"
fi
echo "system-test: logs in $RUN (console.log, results/: journal.txt, journal.json, notebookd.json)"
# The rootfs copy is only worth its 300 MB when something is to be looked into.
[ "$failed" -eq 0 ] && rm -rf "$ROOT"
finish
