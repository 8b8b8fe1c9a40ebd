#!/usr/bin/env bash
# One writer per state directory, and the lock comes first: while another process holds
# STATE_DIR/notebookd.lock, neither `once` nor `run` opens the database for writing (it
# would create and migrate it under the other writer). Each is refused, says why, and
# leaves no database behind. The holder is flock(1) here, so the outcome does not
# depend on timing; a free directory is then created (0700) and used as before.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

S=$T/state/sub # parents missing too: the lock creates them, as the store did
M=$T/manifests
mkdir -p "$M"
nb_write_manifest "$M/a.yaml" lock-a
: >"$T/config.yaml" # an existing empty config: the host's /etc is never read

# notebookd VERB...: sets rc; output in $T/out.log. The endpoint is never reached: a
# refused run stops before any request, a free `check` sends none. fd 9 (the lock) is
# not passed on.
nb() {
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                HUAWEICLOUD_SDK_AK=LOCKTESTAK0000000001 HUAWEICLOUD_SDK_SK=lockTestSecretKey0123456789abcdefghijKL \
                timeout 60 "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$S" -e http://127.0.0.1:9 \
                -p 0123456789abcdef0123456789abcdef --log-target=console "$@" >"$T/out.log" 2>&1 9>&- || rc=$?
}

mkdir -p "$S"
chmod 0700 "$S"
exec 9>"$S/notebookd.lock"
flock -n 9 || nb_fail "cannot take the lock for the test"

nb_step "once, state directory locked by another process"
nb once
nb_assert_ne 0 "$rc" "once exit status while locked"
nb_assert_file_match "$T/out.log" "Another notebookd \(run or once\) is using the state directory" "once says why"
[ ! -e "$S/notebookd.db" ] || nb_fail "once opened the database while another process held the lock: $(ls -l "$S")"

nb_step "run, state directory locked by another process"
nb run
nb_assert_ne 0 "$rc" "run exit status while locked"
nb_assert_file_match "$T/out.log" "Another notebookd \(run or once\) is using the state directory" "run says why"
[ ! -e "$S/notebookd.db" ] || nb_fail "run opened the database while another process held the lock: $(ls -l "$S")"

nb_step "lock released, state directory missing: once creates it (0700) and the database"
exec 9>&-
rm -rf "$T/state"
nb --timeout 2 once
# the endpoint is unreachable: not converged, but the state was opened for writing
[ -f "$S/notebookd.db" ] || nb_fail "once did not create the database: $(cat "$T/out.log")"
nb_assert_eq 700 "$(stat -c %a "$S")" "state directory mode"
nb_assert_eq 700 "$(stat -c %a "$T/state")" "parent created with the same mode"
nb_assert_file_no_match "$T/out.log" 'Sanitizer|runtime error|Another notebookd' "once output"
