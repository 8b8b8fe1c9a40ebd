#!/usr/bin/env bash
# make system-test: notebookd as an operator runs it, under a real systemd as PID 1.
#
# The Debian package (mk/deb.sh, as `make deb` builds it) and a rebuilt one with a higher
# version, copied into a Debian 12 rootfs (debootstrap, cached in build/system/) with the
# emulator, the example manifests and test-only AK/SK pairs; then `systemd-nspawn -b`
# boots it. Inside, inside.sh installs the package with `apt-get install ./notebookd_*.deb`,
# adds the credentials, later runs two instances of notebookd@.service and upgrades to
# the rebuilt package. notebookd-system-test.service runs
# tests/system/inside.sh after multi-user.target: it drives systemctl, journalctl and the
# emulator, writes one PASS/FAIL line per check into a bind-mounted directory and ends the
# container with its own exit status (SuccessAction=/FailureAction=exit). This script adds
# its own checks around that, echoes every line and ends with "N passed, N failed".
#
# Needs root, systemd-nspawn (package systemd-container), debootstrap and the packaging
# tools of `make deps DEB=1` (installed with apt-get when missing), and the Debian archive
# for the first run (about a minute).
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
# Two instances of notebookd@.service, each with its own emulator, project and key pair
# (a daemon signing with the other's keys would be refused).
TEST_INSTANCES="cn-north-4-research ap-southeast-1-vision"
TEST_PROJECT_1=1a1b1c1d1e1f40418a8b8c8d8e8f9091
TEST_PROJECT_2=2a2b2c2d2e2f40428a8b8c8d8e8f9092
# shellcheck disable=SC2034 # read as ${!ak_var} and ${!sk_var}
TEST_AK_1=SYSTEMTESTAK0000RSCH TEST_SK_1=system-test-secret-of-the-research-instance \
        TEST_AK_2=SYSTEMTESTAK0000VISN TEST_SK_2=system-test-secret-of-the-vision-instance

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
DEB=1 sh mk/deps.sh >/dev/null || fatal "prerequisites" "make deps DEB=1 failed (debhelper, devscripts, lintian)"
pass "prerequisites (root, systemd-nspawn, debootstrap, debhelper)"

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

# The package as `make deb` builds it, and the one the test upgrades to: the same tree
# with a changelog entry for a higher version (dch), built into its own directory.
VERSION=$(head -n 1 debian/changelog | cut -d'(' -f2 | cut -d')' -f1)
NEXT_VERSION=$VERSION+systemtest1
deb_env=()
[ ${#make_args[@]} -gt 0 ] && deb_env+=(SANITIZE=1) # an ASan+UBSan daemon in the package
for v in "$VERSION" "$NEXT_VERSION"; do
        bump= # the first is the changelog's own version; the second gets an entry
        [ "$v" = "$VERSION" ] || bump=$v
        if ! env "${deb_env[@]}" NB_DEB_OUT="$RUN/deb-$v" NB_DEB_VERSION="$bump" sh mk/deb.sh >"$RUN/deb-$v.log" 2>&1; then
                tail -n 20 "$RUN/deb-$v.log" | sed 's/^/    /'
                fatal "the package, version $v" "mk/deb.sh failed (log: $RUN/deb-$v.log)"
        fi
done
debs=("$RUN/deb-$VERSION/notebookd_${VERSION}_"*.deb "$RUN/deb-$NEXT_VERSION/notebookd_${NEXT_VERSION}_"*.deb)
if [ -f "${debs[0]}" ] && [ -f "${debs[1]}" ]; then
        pass "the package built twice: ${debs[0]##*/}, ${debs[1]##*/}"
else
        fatal "the package built twice" "no ${debs[*]}"
fi

# The test's own files: the emulator, the script, the MESSAGE_IDs it looks for, the unit
# that runs it at boot, the two packages, and the operator's part (manifests, and the
# credentials inside.sh puts in place once it has seen the package wait for them).
T=$ROOT/opt/notebookd-system-test
install -d "$T" "$T/deb" "$T/deb-next"
install -m 0755 "$BUILD/modelarts-emulator" "$T/modelarts-emulator"
install -m 0755 tests/system/inside.sh "$T/inside.sh"
install -m 0644 daemon/messages.h "$T/messages.h"
install -m 0644 "${debs[0]}" "$T/deb/"
install -m 0644 "${debs[1]}" "$T/deb-next/"
{
        printf 'TEST_PROJECT=%s\nTEST_SANITIZE=%s\n' "$TEST_PROJECT" "${#make_args[@]}"
        printf 'TEST_VERSION=%s\nTEST_NEXT_VERSION=%s\n' "$VERSION" "$NEXT_VERSION"
        printf 'TEST_INSTANCES="%s"\nTEST_PROJECT_1=%s\nTEST_PROJECT_2=%s\n' "$TEST_INSTANCES" "$TEST_PROJECT_1" "$TEST_PROJECT_2"
} >"$T/env"
install -m 0644 tests/system/notebookd-system-test.service "$ROOT/etc/systemd/system/"
install -d "$ROOT/etc/systemd/system/multi-user.target.wants"
ln -sf ../notebookd-system-test.service "$ROOT/etc/systemd/system/multi-user.target.wants/"
# The package makes /etc/notebookd/manifests too; a directory already there is kept.
install -d "$ROOT/etc/notebookd/manifests"
install -m 0644 manifests/*.yaml "$ROOT/etc/notebookd/manifests/"
if [ ${#make_args[@]} -gt 0 ]; then
        for u in notebookd.service notebookd@.service; do
                install -D -m 0644 tests/system/sanitizer.conf "$ROOT/etc/systemd/system/$u.d/sanitizer.conf"
        done
fi
if [ -n "${SYSTEM_TEST_DROPIN:-}" ]; then
        echo "system-test: notebookd.service drop-in $SYSTEM_TEST_DROPIN"
        install -D -m 0644 "$SYSTEM_TEST_DROPIN" "$ROOT/etc/systemd/system/notebookd.service.d/zz-system-test.conf"
fi
# Credentials to be put in place by inside.sh: /etc/notebookd/credentials/ak and sk for
# notebookd.service, /etc/notebookd/credentials/NAME/ for each instance.
C=$T/credentials
install -d -m 0700 "$C"
(umask 077 && printf '%s' "$TEST_AK" >"$C/ak" && printf '%s' "$TEST_SK" >"$C/sk")
i=0
for name in $TEST_INSTANCES; do
        i=$((i + 1))
        ak_var=TEST_AK_$i sk_var=TEST_SK_$i
        install -d -m 0700 "$C/$name"
        (umask 077 && printf '%s' "${!ak_var}" >"$C/$name/ak" && printf '%s' "${!sk_var}" >"$C/$name/sk")
done

# A missing library would only show as a unit failing with status 127 inside (the
# package's own are its Depends:, which apt-get checks inside).
unresolved=$(chroot "$ROOT" ldd /opt/notebookd-system-test/modelarts-emulator 2>&1 | grep 'not found')
if [ -z "$unresolved" ]; then
        pass "the emulator finds its libraries in the rootfs"
else
        fail "the emulator finds its libraries in the rootfs" "$(echo "$unresolved" | tr -s ' \t\n' ' ')"
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
