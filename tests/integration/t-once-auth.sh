#!/usr/bin/env bash
# `notebookd once` with bad credentials or the wrong project: exit 2, a clear message,
# and it stops quickly:
#   - wrong SK: exit 2 (not 3: it gave up at once instead of retrying to the deadline),
#     stderr names the credential kind, the secret appears nowhere, and the emulator saw
#     fewer requests than the gateway's lock threshold (5 bad signatures lock the AK);
#   - wrong project id: exit 2, a message about the project, few requests;
#   - no credentials at all: exit 2, a message naming where it looked, no request;
#   - then the right credentials work (the set-up was sound, the AK is not locked).
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=ONCEAUTHAK0000000001
SK=onceAuthRightSecretKey0123456789abcdefGH
WRONG_SK=onceAuthWrongSecretKey9876543210zyxwvUT
PROJECT=c0ffee00c0ffee00c0ffee00c0ffee00
OTHER_PROJECT=deadbeefdeadbeefdeadbeefdeadbeef
LOCK_AFTER=5

nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --lock-after "$LOCK_AFTER" --create-delay-ms 0

# ---- local helpers ----
: >"$T/config.yaml"
M=$T/manifests
mkdir -p "$M"
for n in auth-1 auth-2 auth-3; do
        printf 'name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n' "$n" >"$M/$n.yaml"
done

# run_once STATE PROJECT [VAR=VALUE...]: credentials come only from the VAR=VALUEs.
# --timeout 30: a client that kept retrying would end at the deadline with exit 3.
run_once() {
        local s=$1 p=$2
        shift 2
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK \
                -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID "$@" \
                timeout 120 "$NOTEBOOKD" -c "$T/config.yaml" -m "$M" -s "$s" -e "$NB_EMULATOR_URL" \
                -p "$p" --log-target=console --timeout 30 once >"$T/once.stdout.log" 2>"$T/once.stderr.log" || rc=$?
}
reset() { curl -fsS -X POST "$NB_EMULATOR_URL/_emulator/reset" >/dev/null; }
# API requests the emulator received (its own control calls left out)
api_requests() {
        nb_emulator_stats | jq '[.by_route | to_entries[] | select(.key != "emulator") | .value] | add'
}
no_secret_anywhere() { # WHAT
        local f s
        for s in "$SK" "$WRONG_SK"; do
                for f in "$T/once.stdout.log" "$T/once.stderr.log"; do
                        ! grep -qF -- "$s" "$f" || nb_fail "$1: a secret key appears in $(basename "$f")"
                done
                ! grep -rqaF -- "$s" "$T"/state-* 2>/dev/null || nb_fail "$1: a secret key is stored in the state directory"
        done
}

# ---- wrong SK ----
nb_step "wrong secret key: exit 2, a clear message, few requests"
run_once "$T/state-wrong-sk" "$PROJECT" HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$WRONG_SK"
nb_assert_eq 2 "$rc" "once with a wrong SK: exit status"
nb_assert_file_match "$T/once.stderr.log" '([Aa][Kk]/[Ss][Kk]|[Aa]ccess key|[Ss]ecret key|[Ss]ignature)' \
        "stderr names the credential kind"
no_secret_anywhere "wrong SK"
nb_emulator_stats >"$T/stats-sk.json"
n=$(api_requests)
[ "$n" -ge 1 ] || nb_fail "wrong SK: no request reached the emulator (exit 2 for another reason?)"
[ "$n" -lt "$LOCK_AFTER" ] || nb_fail "wrong SK: $n requests reached the emulator (the AK locks after $LOCK_AFTER bad signatures)"
nb_assert_eq "$n" "$(jq '.protocol_violations.bad_signature' "$T/stats-sk.json")" "requests rejected as bad signatures"
nb_assert_eq false "$(jq '.auth.ak_locked' "$T/stats-sk.json")" "AK locked"
nb_assert_eq 0 "$(jq '.creates.requests' "$T/stats-sk.json")" "creates that got past authentication"

# ---- wrong project ----
nb_step "wrong project id: exit 2, a message about the project, few requests"
reset
run_once "$T/state-wrong-project" "$OTHER_PROJECT" HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK"
nb_assert_eq 2 "$rc" "once with a wrong project id: exit status"
nb_assert_file_match "$T/once.stderr.log" '[Pp]roject' "stderr mentions the project"
no_secret_anywhere "wrong project"
nb_emulator_stats >"$T/stats-project.json"
n=$(api_requests)
[ "$n" -ge 1 ] && [ "$n" -lt "$LOCK_AFTER" ] || nb_fail "wrong project: $n requests reached the emulator (want 1 to $((LOCK_AFTER - 1)))"
nb_assert_eq "$n" "$(jq '.by_error_code["ModelArts.0210"] // 0' "$T/stats-project.json")" "requests answered ModelArts.0210"
nb_assert_eq 0 "$(jq '.creates.requests' "$T/stats-project.json")" "creates that got past the project check"

# ---- no credentials ----
nb_step "no credentials: exit 2, says where it looked, sends nothing"
reset
run_once "$T/state-none" "$PROJECT"
nb_assert_eq 2 "$rc" "once without credentials: exit status"
nb_assert_file_match "$T/once.stderr.log" 'HUAWEICLOUD_SDK_AK' "stderr names the environment variables it tried"
nb_assert_file_match "$T/once.stderr.log" 'CREDENTIALS_DIRECTORY' "stderr names the systemd credentials it tried"
nb_assert_eq 0 "$(api_requests)" "requests sent without credentials"

# ---- and the right ones work ----
nb_step "the right credentials: exit 0 (the AK is not locked, the set-up is sound)"
reset
run_once "$T/state-right" "$PROJECT" HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK"
nb_assert_eq 0 "$rc" "once with the right credentials: exit status"
nb_emulator_stats >"$T/stats-right.json"
nb_assert_eq 3 "$(jq '.instances.live' "$T/stats-right.json")" "live instances"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats-right.json")" \
        "protocol violations ($(jq -c '.recent_violations' "$T/stats-right.json"))"
no_secret_anywhere "right credentials"

nb_step "ok"
