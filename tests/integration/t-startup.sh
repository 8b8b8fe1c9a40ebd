#!/usr/bin/env bash
# Start-up failures and their exit codes (notebookd(8), EXIT STATUS):
#   75 (EX_TEMPFAIL) what time fixes, so that the unit's Restart=on-failure retries:
#      the state directory locked by a running notebookd, the state database on a full
#      disk;
#    2 what it cannot: a manifests directory the service's user cannot read. The error
#      names the directory, the user, the permission needed and BindReadOnlyPaths=.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=STARTUPTESTAK0000001
SK=startupTestSecretKey0123456789abcdefghiJ
PROJECT=0a1b2c3d4e5f60718293a4b5c6d7e8f9

nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0
: >"$T/config.yaml"
M=$T/manifests
mkdir -p "$M"
nb_write_manifest "$M/a.yaml" st-a

# notebookd with the emulator's credentials: "${NB[@]}" -m DIR -s STATE VERB
NB=(env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID
        HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK"
        timeout 120 "$NOTEBOOKD" -c "$T/config.yaml" -e "$NB_EMULATOR_URL" -p "$PROJECT" --log-target=console)
nb() { # STATE VERB [OPTION...]
        "${NB[@]}" -m "$M" -s "$@"
}
once_rc() { # NAME STATE: runs once, output in $T/NAME.log; sets rc
        rc=0
        nb "$2" once >"$T/$1.log" 2>&1 || rc=$?
}

nb_step "once while a running daemon holds the state directory: 75, and it says why"
nb_start_notify
nb_spawn daemon "${NB[@]}" -m "$M" -s "$T/state" run
daemon=$NB_PID
nb_wait_for_line "$NB_NOTIFY_LOG" 'READY=1' "$NB_TIMEOUT" 1 "$daemon" >/dev/null
once_rc once-locked "$T/state"
nb_assert_eq 75 "$rc" "once next to a running daemon: exit status"
nb_assert_file_match "$T/once-locked.log" 'Another notebookd \(run or once\) is using the state directory' "once's error"
nb_step "run while another run holds it: 75 too"
rc=0
nb "$T/state" run >"$T/run-locked.log" 2>&1 || rc=$?
nb_assert_eq 75 "$rc" "a second daemon: exit status"
nb_assert_file_match "$T/run-locked.log" 'Another notebookd' "the second daemon's error"
nb_stop "$daemon"
nb_assert_eq 0 "$NB_STATUS" "the daemon's exit status after SIGTERM"
nb_step "with the daemon gone, the same once succeeds"
once_rc once-free "$T/state"
nb_assert_eq 0 "$rc" "once alone: exit status"

nb_step "a state directory on a full file system: 75"
# A tiny tmpfs, in this test's private mount namespace (nb_setup), filled up.
[ "$NB_IN_NAMESPACE" = 1 ] || nb_fail "a private tmpfs needs root and unshare --mount"
mkdir -p "$T/full"
mount -t tmpfs -o size=256k,mode=0755 nb-full "$T/full"
nb_at_exit 'umount "$T/full" 2>/dev/null'
mkdir -p "$T/full/state"
dd if=/dev/zero of="$T/full/filler" bs=4k >/dev/null 2>&1 || true
[ "$(df --output=avail "$T/full" | tail -n 1 | tr -d ' ')" = 0 ] || nb_fail "the tmpfs is not full: $(df "$T/full" | tail -n 1)"
once_rc once-full "$T/full/state"
nb_assert_eq 75 "$rc" "once on a full disk: exit status"
nb_assert_file_match "$T/once-full.log" 'State: .*\(temporary: try again later\)' "once's error on a full disk"
nb_step "room again: the same state directory works"
rm -f "$T/full/filler"
once_rc once-room "$T/full/state"
nb_assert_eq 0 "$rc" "once with room: exit status"
umount "$T/full"

nb_step "a configuration error stays 2 (no project ID)"
rc=0
env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_PROJECT_ID HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
        "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$T/state-2" -e "$NB_EMULATOR_URL" --log-target=console once \
        >"$T/once-config.log" 2>&1 || rc=$?
nb_assert_eq 2 "$rc" "once without a project ID: exit status"

nb_step "manifests the service's user cannot read: 2, naming the directory, user and fix"
# As an unprivileged user (nobody), like the unit's DynamicUser=: a tree in a 0700 home
# directory (Debian 12), then a tree that is itself 0700.
command -v setpriv >/dev/null || nb_fail "setpriv missing (util-linux)"
user=$(id -un 65534 2>/dev/null) || nb_fail "no user with uid 65534"
chmod 0755 "$T"
mkdir -p "$T/home/alice/repo/notebooks" "$T/nobody-state"
chown 65534 "$T/nobody-state"
chmod 0700 "$T/home/alice"
nb_write_manifest "$T/home/alice/repo/notebooks/a.yaml" st-home
chmod 0644 "$T/config.yaml"
as_nobody() { # MANIFESTS NAME VERB: sets rc, output in $T/NAME.log
        rc=0
        setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
                "${NB[@]}" -m "$1" -s "$T/nobody-state" "$3" >"$T/$2.log" 2>&1 || rc=$?
}
for verb in once run; do
        as_nobody "$T/home/alice/repo/notebooks" "home-$verb" "$verb"
        nb_assert_eq 2 "$rc" "$verb on a tree in a 0700 home directory: exit status"
        log=$T/home-$verb.log
        nb_assert_file_match "$log" "Cannot read the manifests directory $T/home/alice/repo/notebooks: user $user \\(uid 65534\\) lacks search \\(x\\) permission on $T/home/alice\\." "$verb's error"
        nb_assert_file_match "$log" "BindReadOnlyPaths=$T/home/alice/repo/notebooks:/etc/notebookd/manifests" "$verb's error (the fix)"
done
chmod 0755 "$T/home/alice"
chmod 0700 "$T/home/alice/repo/notebooks"
as_nobody "$T/home/alice/repo/notebooks" tree-once once
nb_assert_eq 2 "$rc" "once on a 0700 tree: exit status"
nb_assert_file_match "$T/tree-once.log" "lacks read and search \\(r-x\\) permission on $T/home/alice/repo/notebooks\\." "once's error on a 0700 tree"
nb_step "readable: the same user gets past the check"
chmod 0755 "$T/home/alice/repo/notebooks"
as_nobody "$T/home/alice/repo/notebooks" readable-once once
nb_assert_file_no_match "$T/readable-once.log" 'Cannot read the manifests directory' "once on a readable tree"
nb_assert_eq 0 "$rc" "once on a readable tree as $user: exit status"

nb_step "ok"
