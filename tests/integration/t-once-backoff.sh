#!/usr/bin/env bash
# Waits the cloud asks for, measured where they matter, at the emulator:
#   A. "resources initialising, wait a minute" (ModelArts.6355): the create is retried
#      and succeeds, and the retry comes no sooner than a minute after the refusal;
#   B. a run of 429s without Retry-After (the common case): each wait is at least twice
#      the one before it (2 s, 4 s, 8 s at the least), and no request comes early.
# The gaps come from the emulator's recent_requests (CLOCK_MONOTONIC ms when answered),
# so a slow machine can only make them longer: no upper bound is asserted.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=ONCEBACKOFFAK0000001
SK=onceBackoffSecretKey0123456789abcdefghiJ
PROJECT=5e6f708192a3b4c5d6e7f8091a2b3c4d
: >"$T/config.yaml"

# mono_ms of the requests of ROUTE (and NAME, when given), oldest first
times_of() { # STATS_FILE ROUTE [NAME]
        jq -r --arg r "$2" --arg n "${3:-}" \
                '.recent_requests[] | select(.route == $r and ($n == "" or .name == $n)) | "\(.mono_ms) \(.status)"' "$1"
}

# ---- A. 6355 ----
nb_step "A: ModelArts.6355 is retried, not sooner than a minute, and succeeds"
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 \
        --inject-error 'ModelArts.6355:init-*:1'
M=$T/a
mkdir -p "$M"
nb_write_manifest "$M/init.yaml" init-1
nb_write_manifest "$M/other.yaml" other-1
rc=0
nb_once "$M" "$T/state-a" --timeout 300 >"$T/once-a.log" 2>&1 || rc=$?
nb_assert_eq 0 "$rc" "once after a 6355: exit status"
nb_emulator_stats >"$T/stats-a.json"
nb_assert_eq 2 "$(jq '.creates.created' "$T/stats-a.json")" "instances created"
mapfile -t tries < <(times_of "$T/stats-a.json" create init-1)
nb_assert_eq 2 "${#tries[@]}" "create requests for init-1 (${tries[*]})"
nb_assert_eq 400 "${tries[0]#* }" "first answer"
gap=$(( ${tries[1]% *} - ${tries[0]% *} ))
[ "$gap" -ge 60000 ] || nb_fail "the retry after 6355 came ${gap} ms after it: sooner than the minute the cloud asked for"
echo "6355 retry gap: ${gap} ms" >&2

# ---- B. 429 without Retry-After ----
nb_step "B: consecutive 429s without Retry-After: growing gaps, none early"
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 \
        --fault-routes list --throttle-next 3
M=$T/b
mkdir -p "$M"
nb_write_manifest "$M/b.yaml" throttled-1
rc=0
nb_once "$M" "$T/state-b" --timeout 300 >"$T/once-b.log" 2>&1 || rc=$?
nb_assert_eq 0 "$rc" "once after three 429s: exit status"
nb_emulator_stats >"$T/stats-b.json"
nb_assert_eq 3 "$(jq '.faults.throttled_429' "$T/stats-b.json")" "429s answered"
mapfile -t lists < <(times_of "$T/stats-b.json" list)
[ "${#lists[@]}" -ge 4 ] || nb_fail "listings: ${#lists[*]} (want 3 refused and at least one answered)"
want_min=2000
for k in 1 2 3; do
        nb_assert_eq 429 "${lists[$((k - 1))]#* }" "listing $k's answer"
        gap=$(( ${lists[$k]% *} - ${lists[$((k - 1))]% *} ))
        echo "gap after 429 #$k: ${gap} ms (at least ${want_min})" >&2
        [ "$gap" -ge "$want_min" ] || nb_fail "request $((k + 1)) came ${gap} ms after 429 #$k: earlier than ${want_min} ms"
        want_min=$((want_min * 2))
done
nb_assert_eq 1 "$(jq '.creates.created' "$T/stats-b.json")" "instances created once the throttle let go"

nb_step "ok"
