#!/usr/bin/env bash
# `notebookd once` honours Retry-After (a 429 is honoured: no request before its
# Retry-After), for a throttled listing and for a throttled create, and the run
# still converges (exit 0, one instance per name).
#
# How "no request before Retry-After" is measured without wall-clock flakiness: the
# emulator logs every request (--log) as it handles it, before answering; its stderr goes
# through a pipe to a reader that stamps each line with $EPOCHREALTIME on arrival. The
# 429's line is written before the 429 is sent, so any request the client sends after
# reading it is logged later by at least the client's wait. A late stamp on the 429's
# line (the reader being descheduled) could only shorten the measured gap, so the gap is
# compared with Retry-After minus a small epsilon; a gap that is too long never fails.
# With `concurrency: 1` no request can be in flight beside the throttled one, so every
# later request was sent after the client saw the 429 (the whole client must hold, not
# only the throttled request).
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=ONCETHROTTLEAK000001
SK=onceThrottleSecretKey0123456789abcdefgHI
PROJECT=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf
RETRY_AFTER=2
EPSILON=0.2

# ---- local helpers ----
STAMPED=$T/emulator-requests.log

# Like nb_start_emulator, but the --log lines on stderr are stamped on arrival.
start_stamped_emulator() { # ARGS...
        [ -x "$EMULATOR" ] || nb_fail "$EMULATOR missing: run make"
        : >"$STAMPED"
        # shellcheck disable=SC2016 # expanded by the inner bash
        nb_spawn emulator env STAMPED="$STAMPED" bash -c \
                'exec "$@" 2> >(while IFS= read -r l; do printf "%s %s\n" "$EPOCHREALTIME" "$l"; done >>"$STAMPED")' \
                bash "$EMULATOR" --listen 127.0.0.1:0 --log "$@"
        NB_EMULATOR_PID=$NB_PID
        local line port
        line=$(nb_wait_for_line "$T/emulator.log" 'listening on 127\.0\.0\.1:[0-9]+' "$NB_TIMEOUT" 1 "$NB_EMULATOR_PID")
        port=${line##*:}
        nb_assert_match '^[0-9]+$' "$port" "emulator port"
        NB_EMULATOR_URL=http://127.0.0.1:$port
}

run_once() { # MANIFESTS STATE CONFIG [OPTION...]: sets rc
        local m=$1 s=$2 c=$3
        shift 3
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
                timeout 300 "$NOTEBOOKD" -c "$c" -m "$m" -s "$s" -e "$NB_EMULATOR_URL" \
                -p "$PROJECT" --log-target=console "$@" once >"$T/once.stdout.log" 2>"$T/once.stderr.log" || rc=$?
}
manifest() { # FILE NAME
        cat >"$1" <<-EOF
	name: $2
	profile_id: Python3
	flavor: modelarts.vm.cpu.2u
	spec:
	  storage:
	    type: evs
	EOF
}

# The API requests the emulator logged from line FROM on, as "STAMP LINE" (control-plane
# calls of the test itself are left out).
api_lines() { # FROM
        tail -n +"$1" "$STAMPED" | grep -E '^[0-9]+\.[0-9]+ [0-9a-f]+ [A-Z]+ "?/v1/' || true
}

# Check: the first 429 among the API lines from line FROM on is followed by at least one
# request, and the first of those came no sooner than Retry-After - epsilon later.
assert_gap_after_429() { # FROM WHAT
        local from=$1 what=$2 t429 tnext gap
        api_lines "$from" >"$T/api-lines"
        t429=$(awk '/ APIG\.0308 *$/ { print $1; exit }' "$T/api-lines")
        [ -n "$t429" ] || nb_fail "$what: no 429 in the emulator's log"
        tnext=$(awk -v t="$t429" 'found { print $1; exit } $1 == t && / APIG\.0308 *$/ { found = 1 }' "$T/api-lines")
        [ -n "$tnext" ] || nb_fail "$what: no request after the 429 (the run cannot have converged)"
        gap=$(awk -v a="$t429" -v b="$tnext" 'BEGIN { printf "%.3f", b - a }')
        nb_step "$what: next request ${gap}s after the 429 (Retry-After: ${RETRY_AFTER}s)"
        awk -v g="$gap" -v r="$RETRY_AFTER" -v e="$EPSILON" 'BEGIN { exit !(g >= r - e) }' ||
                nb_fail "$what: a request reached the emulator ${gap}s after a 429 with Retry-After: $RETRY_AFTER"
}

start_stamped_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 --seed 3 \
        --retry-after "$RETRY_AFTER" --retry-after-header

# ---- 1. the listing is throttled ----
nb_step "1: the first request (the listing) gets 429"
nb_emulator_config "throttle_next=1&fault_routes=all"
M1=$T/manifests-1
mkdir -p "$M1"
manifest "$M1/a.yaml" thr-list-a
manifest "$M1/b.yaml" thr-list-b
: >"$T/config.yaml"
from=$(($(wc -l <"$STAMPED") + 1))
run_once "$M1" "$T/state-1" "$T/config.yaml" --wait --timeout 120
nb_assert_eq 0 "$rc" "once after a throttled listing: exit status"
nb_emulator_stats >"$T/stats1.json"
nb_assert_eq 1 "$(jq '.faults.throttled_429' "$T/stats1.json")" "429s injected"
nb_assert_eq 1 "$(jq '.by_route_status.list["429"] // 0' "$T/stats1.json")" "429s on the listing"
api_lines "$from" | head -n 1 | grep -qE ' APIG\.0308 *$' || nb_fail "the first request was not the one throttled"
assert_gap_after_429 "$from" "throttled listing"
for n in thr-list-a thr-list-b; do
        nb_assert_eq "1 1" "$(jq -r --arg n "$n" '.creates.by_name[$n] // {requests: 0, created: 0} | "\(.requests) \(.created)"' "$T/stats1.json")" \
                "$n: create requests, created"
done

# ---- 2. a create is throttled: the whole client holds ----
nb_step "2: a create gets 429 while more creates wait (concurrency 1)"
nb_emulator_config "throttle_next=1&fault_routes=create"
M2=$T/manifests-2
mkdir -p "$M2"
for i in 1 2 3 4; do
        manifest "$M2/c$i.yaml" "thr-create-$i"
done
printf 'concurrency: 1\n' >"$T/config-serial.yaml"
from=$(($(wc -l <"$STAMPED") + 1))
run_once "$M2" "$T/state-2" "$T/config-serial.yaml" --wait --timeout 120
nb_assert_eq 0 "$rc" "once after a throttled create: exit status"
nb_emulator_stats >"$T/stats2.json"
nb_assert_eq 2 "$(jq '.faults.throttled_429' "$T/stats2.json")" "429s injected (both runs)"
nb_assert_eq 1 "$(jq '.by_route_status.create["429"] // 0' "$T/stats2.json")" "429s on a create"
assert_gap_after_429 "$from" "throttled create"
for i in 1 2 3 4; do
        nb_assert_eq "1 0" \
                "$(jq -r --arg n "thr-create-$i" '.creates.by_name[$n] | "\(.created) \(.duplicates)"' "$T/stats2.json")" \
                "thr-create-$i: created, duplicates"
done
nb_assert_eq 6 "$(jq '.instances.live' "$T/stats2.json")" "live instances"
# the throttled create was sent again (after the wait), the others once each: 2 creates
# in run 1, 5 in run 2 (a 429 is answered before the create rules, so only by_route
# counts it, not creates.requests)
nb_assert_eq 7 "$(jq '.by_route.create' "$T/stats2.json")" "create requests on the wire, both runs"
nb_assert_eq 6 "$(jq '.creates.requests' "$T/stats2.json")" "create requests that reached the rules, both runs"

nb_step "ok"
