#!/usr/bin/env bash
# The emulator against the ModelArts DevEnviron API as Huawei documents it, driven
# with curl and jq:
# create / list paging / get / delete / start-stop, ModelArts.6301, the create rules,
# de_type, project checks, stats, the control plane, AK/SK signatures (signed here by an
# independent bash+openssl signer, itself checked against the published vector), tokens,
# the AK lock, and every fault flag at rate 1.0. And the habits of today's cloud: error
# bodies with error_message, listings per workspace and show_self, instances seeded as
# another user's, total_count as a string, 429s without Retry-After, injected create
# errors, the region's catalog as flags, 6304 and 6305-6308, recent_requests.
# notebookd's own tests live elsewhere.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"
# lib.sh's nb__reap starts its killer with '&': until that child has exec'd perl it is a
# copy of this shell, traps included, and stopping it early ran nb__cleanup there (which
# kills everything and removes $T) in the middle of this test. Clean up only in this
# shell.
nb__cleanup_here() {
        local rc=$?
        [ "$BASHPID" = "$$" ] || exit "$rc"
        # nb__cleanup reads the status from $? (and set -e must not end this first)
        if [ "$rc" = 0 ]; then nb__cleanup; else (exit "$rc") || nb__cleanup; fi
}
trap nb__cleanup_here EXIT

P=ed43aef64dff4e5c81cb84b71adcb3fd
OTHER_P=0123456789abcdef0123456789abcdef
EVS='{"type":"evs"}'

# ---- helpers ----

# req METHOD URL [BODY [CURL ARGS...]]: answer in $T/body, headers in $T/headers,
# status in $code. Sends X-Project-Id (the contract says always).
req() {
        local m=$1 url=$2 body=${3-}
        shift 2
        [ $# -gt 0 ] && shift
        local args=(-sS -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$m" -H "X-Project-Id: $P")
        [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
        code=$(curl "${args[@]}" "$@" "$url")
}
body() {
        [ $# -gt 0 ] || set -- .
        jq -c "$@" "$T/body"
}
hdr() { sed -n "s/^$1: *//Ip" "$T/headers" | tr -d '\r'; }
expect() { # HTTP [ERROR_CODE] WHAT
        nb_assert_eq "$1" "$code" "$3: HTTP status (body $(cat "$T/body"))"
        [ -z "$2" ] || nb_assert_eq "$2" "$(jq -r .error_code "$T/body")" "$3: error_code"
        nb_assert_match '^[0-9a-f]{32}$' "$(hdr X-Request-Id)" "$3: X-Request-Id"
}
stats() { curl -sS "$U/_emulator/stats" | jq -c "$1"; }
ctl() { curl -sS -o "$T/body" -w '%{http_code}' -X POST "$U/_emulator/$1"; }
mk() { # NAME [PROFILE FLAVOR STORAGE]: a create body
        jq -cn --arg n "$1" --arg p "${2:-Python3}" --arg f "${3:-modelarts.vm.cpu.2u}" --argjson s "${4:-$EVS}" \
                '{name:$n, profile_id:$p, flavor:$f, spec:{storage:$s}}'
}
emu() { # start one emulator; sets U, B (the instances URL), EPID
        nb_start_emulator "$@"
        U=$NB_EMULATOR_URL
        B=$U/v1/$P/demanager/instances
        EPID=$NB_EMULATOR_PID
}
emu_log() { ls -t "$T"/emulator*.log | head -n1; }
stop_emu() { # exit 0 on SIGTERM, with nothing from the sanitizers
        local log
        log=$(emu_log)
        nb_stop "$EPID"
        nb_assert_eq 0 "$NB_STATUS" "emulator exit status on SIGTERM"
        nb_assert_file_no_match "$log" 'Sanitizer|runtime error' "emulator log"
}

# ---- an independent SDK-HMAC-SHA256 signer (Huawei Cloud's API signing guide) ----
sha256() { sha256sum | cut -d' ' -f1; }
# sign METHOD HOST PATH CANONICAL_QUERY BODY DATE AK SK [X_PROJECT_ID]: prints Authorization
sign() {
        local m=$1 host=$2 path=$3 q=$4 b=$5 d=$6 ak=$7 sk=$8 pid=${9-} ch sh cr sts sig
        [[ $path == */ ]] || path=$path/
        ch=""
        sh=""
        [ -n "$b" ] && ch+="content-type:application/json"$'\n' && sh+="content-type;"
        ch+="host:$host"$'\n'
        sh+="host;"
        [ -n "$pid" ] && ch+="x-project-id:$pid"$'\n' && sh+="x-project-id;"
        ch+="x-sdk-date:$d"$'\n'
        sh+="x-sdk-date"
        cr="$m"$'\n'"$path"$'\n'"$q"$'\n'"$ch"$'\n'"$sh"$'\n'"$(printf '%s' "$b" | sha256)"
        sts="SDK-HMAC-SHA256"$'\n'"$d"$'\n'"$(printf '%s' "$cr" | sha256)"
        sig=$(printf '%s' "$sts" | openssl dgst -sha256 -hmac "$sk" | sed 's/.*= *//')
        echo "SDK-HMAC-SHA256 Access=$ak, SignedHeaders=$sh, Signature=$sig"
}
# sreq METHOD PATH QUERY BODY AK SK [DATE]: a signed request to the emulator at $U.
sreq() {
        local m=$1 path=$2 q=$3 b=$4 ak=$5 sk=$6 d=${7:-$(date -u +%Y%m%dT%H%M%SZ)} host=${U#http://} auth
        auth=$(sign "$m" "$host" "$path" "$q" "$b" "$d" "$ak" "$sk" "$P")
        req "$m" "$U$path${q:+?$q}" "$b" -H "X-Sdk-Date: $d" -H "Authorization: $auth"
}

nb_step "the test's own signer reproduces the published vector"
V=$(sign POST modelarts.cn-north-4.myhuaweicloud.com /v1/$P/demanager/instances "" \
        '{"name":"notebook-demo_01","profile_id":"Python3","description":"created by daemon","flavor":"modelarts.vm.cpu.2u","spec":{"storage":{"type":"evs","location":{"volume_size":5}}},"workspace":{"id":"0"}}' \
        20240315T083000Z HPUAEXAMPLEAK0000001 exampleSecretKey0123456789abcdefghijABCD $P)
nb_assert_eq "SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=dbdd017e59d03db710760c73742082ed35a1a426de553b697a47b4d0cf529dff" "$V" "vector 2"

nb_step "startup: loopback only, bad flags refused"
if "$EMULATOR" --listen 0.0.0.0:0 >"$T/refused.log" 2>&1; then nb_fail "listening on 0.0.0.0 was accepted"; fi
nb_assert_file_match "$T/refused.log" 'loopback addresses only'
if "$EMULATOR" --fail-5xx-rate 1.5 >"$T/refused.log" 2>&1; then nb_fail "a rate of 1.5 was accepted"; fi
nb_assert_file_match "$T/refused.log" 'rate in \[0, 1\]'
refused() { # EXPECTED_ERE FLAGS...: exit status 2 and the reason
        local want=$1 rc=0
        shift
        "$EMULATOR" "$@" >"$T/refused.log" 2>&1 || rc=$?
        nb_assert_match "^2 modelarts-emulator: $want" "$rc $(cat "$T/refused.log")" "$*: exit status and reason"
}
refused 'bad value for --error-field: "text"' --error-field text
refused '--inject-error: unsupported code "ModelArts\.9999"' --inject-error 'ModelArts.9999:x-*'
refused 'bad --inject-error item "ModelArts\.6355"' --inject-error ModelArts.6355
refused 'bad catalog item "B"' --profiles 'A=cpu,B'
refused 'bad catalog item "x=tpu"' --flavors 'x=tpu'

# =====================================================================================
emu --project-id $P --create-delay-ms 0 --action-delay-ms 0 --fail-pattern 'doomed-*,*-fails'

nb_step "create: 201 with the instance; fields per the contract"
req POST "$B" "$(jq -cn '{name:"nb-a", profile_id:"Python3", description:"first one", flavor:"modelarts.vm.cpu.2u",
        spec:{storage:{type:"obs", location:{path:"my-bucket/notebooks/a/"}}, annotations:{team:"x"}},
        workspace:{id:"0"}, unknown_field:{ignored:true}}')"
expect 201 "" "create nb-a"
ID_A=$(body -r .id)
nb_assert_match '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "$ID_A" "instance id"
nb_assert_eq '["nb-a","first one","RUNNING","modelarts.vm.cpu.2u","0"]' \
        "$(body '[.name,.description,.status,.flavor,.workspace.id]')" "instance fields"
nb_assert_eq '{"storage":{"type":"obs","location":{"path":"my-bucket/notebooks/a/"}},"annotations":{"team":"x"}}' "$(body .spec)" "spec echoed"
nb_assert_eq '["Python3","Notebook","Docker","CCE"]' "$(body '[.profile.id,.profile.de_type,.profile.provision.type,.profile.provision.spec.engine]')" "profile"
nb_assert_match '^"[0-9]{13}"$' "$(body .creation_timestamp)" "creation_timestamp is a string of ms"

nb_step "get; not found is 400 ModelArts.6309"
req GET "$B/$ID_A"
expect 200 "" "get"
nb_assert_eq '"nb-a"' "$(body .name)"
req GET "$B/00000000-0000-4000-8000-000000000000"
expect 400 ModelArts.6309 "get unknown"

nb_step "6301: the name is taken; stats show the duplicate"
req POST "$B" "$(mk nb-a)"
expect 400 ModelArts.6301 "duplicate create"
nb_assert_eq '{"requests":2,"created":1,"duplicates":1}' "$(stats '.creates.by_name["nb-a"]')" "creates of nb-a"
nb_assert_eq 1 "$(stats .creates.duplicates)" "duplicates total"

nb_step "the create rules, one case each"
long=$(printf 'n%.0s' {1..65})
desc513=$(printf 'd%.0s' {1..513})
while IFS='|' read -r want what json; do
        [ -n "$want" ] || continue
        req POST "$B" "$json"
        expect 400 "$want" "$what"
done <<EOF
ModelArts.6335|name missing|{"profile_id":"Python3","flavor":"modelarts.vm.cpu.2u","spec":{"storage":$EVS}}
ModelArts.6335|profile_id null|{"name":"x1","profile_id":null,"flavor":"modelarts.vm.cpu.2u","spec":{"storage":$EVS}}
ModelArts.6335|flavor missing|{"name":"x1","profile_id":"Python3","spec":{"storage":$EVS}}
ModelArts.6335|spec missing|{"name":"x1","profile_id":"Python3","flavor":"modelarts.vm.cpu.2u"}
ModelArts.6316|storage missing|{"name":"x1","profile_id":"Python3","flavor":"modelarts.vm.cpu.2u","spec":{}}
ModelArts.6335|storage type missing|$(mk x1 Python3 modelarts.vm.cpu.2u '{}')
ModelArts.6332|name a number|{"name":7,"profile_id":"Python3","flavor":"modelarts.vm.cpu.2u","spec":{"storage":$EVS}}
ModelArts.6332|spec a string|{"name":"x1","profile_id":"Python3","flavor":"modelarts.vm.cpu.2u","spec":"evs"}
ModelArts.6332|volume_size fractional|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"evs","location":{"volume_size":5.5}}')
ModelArts.6332|volume_size a string|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"evs","location":{"volume_size":"5"}}')
ModelArts.6332|workspace id a number|{"name":"x1","profile_id":"Python3","flavor":"modelarts.vm.cpu.2u","spec":{"storage":$EVS},"workspace":{"id":0}}
ModelArts.6332|body an array|[1,2]
ModelArts.6334|name with a dot|$(mk x.1)
ModelArts.6334|name empty|$(mk '')
ModelArts.6334|name 65 chars|$(mk "$long")
ModelArts.6334|name not ASCII|$(mk 'café')
ModelArts.6334|description with <|{"name":"x1","description":"a<b","profile_id":"Python3","flavor":"modelarts.vm.cpu.2u","spec":{"storage":$EVS}}
ModelArts.6334|description with /|{"name":"x1","description":"a/b","profile_id":"Python3","flavor":"modelarts.vm.cpu.2u","spec":{"storage":$EVS}}
ModelArts.6334|description 513 chars|{"name":"x1","description":"$desc513","profile_id":"Python3","flavor":"modelarts.vm.cpu.2u","spec":{"storage":$EVS}}
ModelArts.6336|profile unknown|$(mk x1 Python4)
ModelArts.6323|flavor unknown|$(mk x1 Python3 modelarts.vm.cpu.4u)
ModelArts.6330|CPU profile on a GPU flavor|$(mk x1 Python3 modelarts.vm.gpu.p100)
ModelArts.6330|GPU profile on a CPU flavor|$(mk x1 Python3-gpu modelarts.vm.cpu.8u)
ModelArts.6328|multi-card GPU without permission|$(mk x1 Python3-gpu modelarts.vm.gpu.2p100)
ModelArts.6336|storage type nfs|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"nfs"}')
ModelArts.6317|OBS without location|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"obs"}')
ModelArts.6317|OBS without path|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"obs","location":{"volume_size":5}}')
ModelArts.6318|OBS path without /|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"obs","location":{"path":"bucket/dir"}}')
ModelArts.6358|OBS bucket root|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"obs","location":{"path":"bucket/"}}')
ModelArts.6336|OBS bucket name with capitals|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"obs","location":{"path":"Bucket/dir/"}}')
ModelArts.6336|OBS path with //|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"obs","location":{"path":"bucket//dir/"}}')
ModelArts.6331|EVS 4 GB|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"evs","location":{"volume_size":4}}')
ModelArts.6331|EVS 4097 GB|$(mk x1 Python3 modelarts.vm.cpu.2u '{"type":"evs","location":{"volume_size":4097}}')
EOF
nb_assert_eq 0 "$(stats '.creates.by_name.x1.created // 0')" "no rejected create made an instance"
nb_assert_eq 0 "$(stats .protocol_violations.total)" "rule failures are not protocol violations"

nb_step "the edges that pass"
req POST "$B" "$(mk "$(printf 'N%.0s' {1..63})_")"
expect 201 "" "64-char name"
req POST "$B" "$(mk evs-max Python3-gpu modelarts.vm.gpu.p100 '{"type":"evs","location":{"volume_size":4096}}')"
expect 201 "" "EVS 4096 GB, GPU on GPU"
nb_assert_eq 4096 "$(body .spec.storage.location.volume_size)"
req POST "$B" "$(mk evs-default)"
nb_assert_eq 5 "$(body .spec.storage.location.volume_size)" "EVS default size"
req POST "$B" "$(mk obs-lead Python3 modelarts.vm.cpu.2u '{"type":"obs","location":{"path":"/bucket-1/x/y/"}}')"
expect 201 "" "OBS path with a leading /"
req POST "$B" "$(mk doomed-1)"
expect 201 "" "create of a --fail-pattern name"
nb_assert_eq '"CREATE_FAILED"' "$(body .status)" "--fail-pattern with no delay"
nb_assert_eq '"ModelArts.6360"' "$(body .spec.failed_reasons.code)" "failed_reasons"

nb_step "protocol violations: malformed JSON, Content-Type, unknown route"
req POST "$B" '{"name":'
expect 400 ModelArts.6332 "malformed JSON"
code=$(curl -sS -o "$T/body" -D "$T/headers" -w '%{http_code}' -H "X-Project-Id: $P" -H 'Content-Type: text/plain' --data-binary "$(mk ct-1)" "$B")
expect 400 ModelArts.6332 "text/plain body"
req GET "$U/v2/$P/notebooks"
expect 404 APIG.0101 "unknown route"
nb_assert_eq '[1,1,1]' "$(stats '.protocol_violations|[.malformed_json,.bad_content_type,.unknown_route]')" "violations counted"
nb_assert_eq 0 "$(stats '.creates.by_name["ct-1"].created // 0')" "nothing created by a refused body"

nb_step "list: de_type required, paging, sorting, filters"
ctl reset >/dev/null
for n in e d a c b; do
        req POST "$B" "$(mk "p-$n")"
        expect 201 "" "create p-$n"
done
req GET "$B"
expect 400 ModelArts.6335 "list without de_type"
req GET "$B?de_type=notebook"
expect 400 ModelArts.6336 "de_type in the wrong case"
nb_assert_eq '[1,1]' "$(stats '.protocol_violations|[.missing_de_type,.bad_de_type]')" "de_type violations"
req GET "$B?de_type=Notebook&limit=2&offset=0"
expect 200 "" "page 1"
nb_assert_eq '5 ["p-a","p-b"]' "$(body .total_count) $(body '[.instances[].name]')" "page 1"
req GET "$B?de_type=Notebook&limit=2&offset=2"
nb_assert_eq '["p-c","p-d"]' "$(body '[.instances[].name]')" "page 2"
req GET "$B?de_type=Notebook&limit=2&offset=4"
nb_assert_eq '5 ["p-e"]' "$(body .total_count) $(body '[.instances[].name]')" "page 3"
req GET "$B?de_type=Notebook&limit=2&offset=6"
nb_assert_eq '5 []' "$(body .total_count) $(body '[.instances[].name]')" "past the end"
req GET "$B?de_type=Notebook&limit=0"
nb_assert_eq '["p-a","p-b","p-c","p-d","p-e"]' "$(body '[.instances[].name]')" "limit 0 = all"
req GET "$B?de_type=Notebook&order=desc&sortby=name"
nb_assert_eq '["p-e","p-d","p-c","p-b","p-a"]' "$(body '[.instances[].name]')" "desc"
req GET "$B?de_type=Notebook&sortby=creation_timestamp"
nb_assert_eq '["p-e","p-d","p-a","p-c","p-b"]' "$(body '[.instances[].name]')" "by creation time"
req GET "$B?de_type=Notebook&limit=-1"
expect 400 ModelArts.6336 "negative limit"
req GET "$B?de_type=Notebook&sortby=size"
expect 400 ModelArts.6336 "bad sortby"
nb_assert_eq 0 "$(stats .protocol_violations.query_not_canonical)" "sorted queries are canonical"
req GET "$B?limit=2&de_type=Notebook"
expect 200 "" "unsorted query still answered"
nb_assert_eq 1 "$(stats .protocol_violations.query_not_canonical)" "unsorted query is a violation"

nb_step "control plane: force a status, delete behind the client's back"
nb_assert_eq 200 "$(ctl 'status?name=p-c&status=STOPPED')" "force STOPPED"
req GET "$B?de_type=Notebook&status=STOPPED"
nb_assert_eq '1 ["p-c"]' "$(body .total_count) $(body '[.instances[].name]')" "status filter"
nb_assert_eq 200 "$(ctl 'delete?name=p-e')" "delete behind the back"
req GET "$B?de_type=Notebook"
nb_assert_eq 4 "$(body .total_count)" "p-e gone"
nb_assert_eq 404 "$(ctl 'delete?name=p-e')" "nothing left to delete"
nb_assert_eq 200 "$(ctl 'status?name=p-d&status=DELETED')" "force DELETED"
req POST "$B" "$(mk p-d)"
expect 201 "" "a DELETED instance's name is free again"
nb_assert_eq 200 "$(ctl 'status?name=p-d&status=CREATING&then=RUNNING&after_ms=3600000')" "pending transition"
nb_assert_eq '"CREATING"' "$(jq -c .status "$T/body")" "still CREATING"
nb_assert_eq 200 "$(ctl 'status?name=p-d&status=CREATING&then=RUNNING&after_ms=0')" "due transition"
req GET "$B?de_type=Notebook&status=RUNNING"
nb_assert_match '"p-d"' "$(body '[.instances[].name]')" "a due transition is applied when looked at"

nb_step "start/stop actions; the wrong state is 6305-6308 (6357 for the rest)"
ID_B=$(curl -sS -H "X-Project-Id: $P" "$B?de_type=Notebook" | jq -r '.instances[]|select(.name=="p-b").id')
req POST "$B/$ID_B/action" '{"action":"start"}'
expect 400 ModelArts.6305 "start a running instance"
req POST "$B/$ID_B/action" '{"action":"stop"}'
expect 200 "" "stop"
nb_assert_eq '{"current_status":"STOPPING","previous_state":"RUNNING"}' "$(body)" "stop answer"
req GET "$B/$ID_B"
nb_assert_eq '"STOPPED"' "$(body .status)" "stopped (no action delay)"
req POST "$B/$ID_B/action" '{"action":"stop"}'
expect 400 ModelArts.6307 "stop a stopped instance"
req POST "$B/$ID_B/action" '{"action":"reboot"}'
expect 400 ModelArts.6336 "unknown action"
req POST "$B/$ID_B/action" '{"action":"start"}'
expect 200 "" "start"
req GET "$B/$ID_B"
nb_assert_eq '"RUNNING"' "$(body .status)" "running again"
ctl 'status?name=p-b&status=STARTING' >/dev/null
req POST "$B/$ID_B/action" '{"action":"start"}'
expect 400 ModelArts.6306 "start a starting instance"
ctl 'status?name=p-b&status=STOPPING' >/dev/null
req POST "$B/$ID_B/action" '{"action":"stop"}'
expect 400 ModelArts.6308 "stop a stopping instance"
ctl 'status?name=p-b&status=CREATING' >/dev/null
req POST "$B/$ID_B/action" '{"action":"start"}'
expect 400 ModelArts.6357 "start a creating instance"

nb_step "delete: only what does not run (6304: stop it first)"
for st in RUNNING STARTING STOPPING CREATING; do
        ctl "status?name=p-b&status=$st" >/dev/null
        req DELETE "$B/$ID_B"
        expect 400 ModelArts.6304 "delete a $st instance"
done
req GET "$B/$ID_B"
expect 200 "" "the refused deletes left it there"
ctl 'status?name=p-b&status=RUNNING' >/dev/null
req POST "$B/$ID_B/action" '{"action":"stop"}'
expect 200 "" "stop before deleting"
req DELETE "$B/$ID_B"
expect 200 "" "delete a stopped instance"
nb_assert_eq "\"$ID_B\"" "$(body .instance_id)"
req DELETE "$B/$ID_B"
expect 400 ModelArts.6309 "delete again"
ID_C=$(curl -sS -H "X-Project-Id: $P" "$B?de_type=Notebook" | jq -r '.instances[]|select(.name=="p-c").id')
ctl 'status?name=p-c&status=CREATE_FAILED' >/dev/null
req DELETE "$B/$ID_C"
expect 200 "" "delete a CREATE_FAILED instance"

nb_step "project checks: path and X-Project-Id"
req GET "$U/v1/$OTHER_P/demanager/instances?de_type=Notebook"
expect 403 ModelArts.0210 "wrong project in the path"
code=$(curl -sS -o "$T/body" -D "$T/headers" -w '%{http_code}' -H "X-Project-Id: $OTHER_P" "$B?de_type=Notebook")
expect 403 ModelArts.0210 "X-Project-Id differs from the path"
code=$(curl -sS -o "$T/body" -D "$T/headers" -w '%{http_code}' "$B?de_type=Notebook")
expect 200 "" "no X-Project-Id: answered"
nb_assert_eq '[2,1]' "$(stats '.protocol_violations|[.project_mismatch,.missing_x_project_id]')" "project violations"

nb_step "instance limit (runtime config): 6302"
nb_assert_eq 200 "$(ctl 'config?max_instances=5')" "set max_instances"
live=$(stats .instances.live)
for ((i = live; i < 5; i++)); do
        req POST "$B" "$(mk "fill-$i")"
        expect 201 "" "fill $i"
done
req POST "$B" "$(mk one-too-many)"
expect 400 ModelArts.6302 "over the limit"
req POST "$B" "$(mk p-a)"
expect 400 ModelArts.6301 "a duplicate at the limit is still 6301 (adoptable)"
nb_assert_eq 400 "$(ctl 'config?listen=127.0.0.1:1')" "startup-only setting refused at runtime"
nb_assert_eq 400 "$(ctl 'config?throttle_rate=2')" "bad rate refused"
nb_assert_eq '5 0' "$(curl -sS "$U/_emulator/config" | jq -r '"\(.max_instances) \(.throttle_rate)"')" "all or nothing"

nb_step "stats: by route, by status, instances by status"
nb_assert_match '^[1-9]' "$(stats .by_route.create)" "create count"
nb_assert_eq "$(stats '.by_route_status.create|to_entries|map(.value)|add')" "$(stats .by_route.create)" "every create answered"
nb_assert_eq "$(stats .instances.live)" "$(stats '.instances.by_status|to_entries|map(select(.key!="DELETED").value)|add')" "live instances by status"

nb_step "reset clears instances and counters"
nb_assert_eq 200 "$(ctl reset)" "reset"
nb_assert_eq '1 0 0' "$(stats '"\(.requests) \(.instances.live) \(.creates.requests)"' | tr -d '"')" "after reset (the stats call counts itself)"

nb_step "one-shot faults: fail_5xx_next, throttle_next, drop_after_create_next"
ctl 'config?max_instances=0&fail_5xx_next=2' >/dev/null
req GET "$B?de_type=Notebook"
expect 500 ModelArts.0010 "first 500"
req GET "$B?de_type=Notebook"
expect 500 ModelArts.0010 "second 500"
req GET "$B?de_type=Notebook"
expect 200 "" "then fine"
ctl 'config?throttle_next=1&retry_after=3' >/dev/null
req POST "$B" "$(mk t-0)"
expect 429 APIG.0308 "throttled"
nb_assert_eq "" "$(hdr Retry-After)" "a 429 has no Retry-After unless asked"
nb_assert_eq '{"error_code":"APIG.0308","error_msg":"The throttling threshold has been reached: policy user over ratelimit,limit:5,time:1 minute"}' \
        "$(body 'del(.request_id)')" "the 429 body names the per-minute policy"
ctl 'config?throttle_next=1&retry_after_header=true' >/dev/null
req POST "$B" "$(mk t-1)"
expect 429 APIG.0308 "throttled"
nb_assert_eq 3 "$(hdr Retry-After)" "Retry-After with --retry-after-header"
nb_assert_match '^[0-9a-f]{32}$' "$(body -r .request_id)" "gateway body has request_id"
req POST "$B" "$(mk t-1)"
expect 201 "" "after the 429"
ctl 'config?fault_routes=list&fail_5xx_next=1' >/dev/null
req POST "$B" "$(mk t-2)"
expect 201 "" "faults limited to list: create not faulted"
req GET "$B?de_type=Notebook"
expect 500 ModelArts.0010 "faults limited to list: list faulted"
stop_emu

# =====================================================================================
# Today's cloud: the emulator follows the real cloud's habits, checked here.
emu --project-id $P --create-delay-ms 0 --action-delay-ms 0

nb_step "error bodies: error_message by default, error_msg with --error-field msg; gateway: error_msg"
req POST "$B" "$(mk x1 Python4)"
expect 400 ModelArts.6336 "a rule failure"
keys=$(body -c keys)
nb_assert_eq '{"error_field":"msg"}' "$(curl -sS -X POST "$U/_emulator/config?error_field=msg" | jq -c '{error_field}')" "error_field=msg at runtime"
req POST "$B" "$(mk x1 Python4)"
nb_assert_eq '["error_code","error_message"] ["error_code","error_msg"]' "$keys $(body keys)" "ModelArts error keys: by default, then with error_field=msg"
nb_assert_match '^400 bad value for --error-field: "text"' "$(ctl 'config?error_field=text') $(body -r .error)" "error_field=text refused"
ctl 'config?error_field=message&throttle_next=1' >/dev/null
req GET "$B?de_type=Notebook"
expect 429 APIG.0308 "gateway error"
nb_assert_eq '["error_code","error_msg","request_id"]' "$(body 'keys')" "gateway errors keep error_msg and request_id"

nb_step "seed: instances made behind the API, by us or by another user"
ctl reset >/dev/null
nb_assert_eq 200 "$(ctl 'seed?name=seed-default')" "seed with the defaults"
nb_assert_eq '["seed-default","0","RUNNING","modelarts.vm.cpu.2u","Python3"]' \
        "$(body '[.name,.workspace.id,.status,.flavor,.profile.id]')" "the seeded instance's defaults"
nb_assert_eq 409 "$(ctl 'seed?name=seed-default')" "a live name cannot be seeded twice"
nb_assert_eq 200 "$(ctl 'seed?name=theirs&owner=other')" "seed another user's instance"
ID_THEIRS=$(jq -r .id "$T/body")
nb_assert_eq 200 "$(ctl 'seed?name=in-a&workspace_id=ws-a&status=STOPPED&flavor=modelarts.kat1.xlarge&profile_id=Ascend-Power-Engine%201.0(python3)')" "seed into ws-a"
nb_assert_eq '["ws-a","STOPPED","modelarts.kat1.xlarge","Ascend-Power-Engine 1.0(python3)"]' \
        "$(body '[.workspace.id,.status,.flavor,.profile.id]')" "the seeded instance's fields"
nb_assert_eq 200 "$(ctl 'seed?name=theirs-a&workspace_id=ws-a&owner=other')" "seed another user's instance into ws-a"
nb_assert_eq 400 "$(ctl 'seed?name=bad-owner&owner=me')" "owner must be self or other"
nb_assert_eq 400 "$(ctl 'seed?name=bad.name')" "the name rule"
nb_assert_eq '0 0 4' "$(stats '"\(.creates.requests) \(.creates.created) \(.instances.live)"' | tr -d '"')" "seeding is not a create"

nb_step "listings: workspace_id (default \"0\") and show_self (default true)"
req POST "$B" "$(jq -cn '{name:"mine-b", profile_id:"Python3", flavor:"modelarts.vm.cpu.2u", spec:{storage:{type:"evs"}}, workspace:{id:"ws-b"}}')"
expect 201 "" "create into ws-b"
req GET "$B?de_type=Notebook"
expect 200 "" "list without workspace_id"
nb_assert_eq '1 ["seed-default"]' "$(body .total_count) $(body '[.instances[].name]')" "only workspace 0, only our own"
req GET "$B?de_type=Notebook&workspace_id=ws-a"
nb_assert_eq '1 ["in-a"]' "$(body .total_count) $(body '[.instances[].name]')" "workspace ws-a, our own"
req GET "$B?de_type=Notebook&show_self=false"
nb_assert_eq '2 ["seed-default","theirs"]' "$(body .total_count) $(body '[.instances[].name]')" "show_self=false: everyone's in workspace 0"
req GET "$B?de_type=Notebook&show_self=false&workspace_id=ws-a"
nb_assert_eq '2 ["in-a","theirs-a"]' "$(body .total_count) $(body '[.instances[].name]')" "show_self=false in ws-a"
req GET "$B?de_type=Notebook&limit=1&offset=1&show_self=false"
nb_assert_eq '2 ["theirs"]' "$(body .total_count) $(body '[.instances[].name]')" "total_count counts after the filters, before paging"
req GET "$B?de_type=Notebook&show_self=yes"
expect 400 ModelArts.6336 "show_self must be true or false"
req POST "$B" "$(mk theirs)"
expect 400 ModelArts.6301 "a hidden instance still takes its name"
req GET "$B/$ID_THEIRS"
expect 200 "" "GET by id still answers for a hidden instance"

nb_step "total_count as a string (--total-count-string)"
req GET "$B?de_type=Notebook"
t1=$(body '.total_count|type')
ctl 'config?total_count_string=true' >/dev/null
req GET "$B?de_type=Notebook"
nb_assert_eq '"number" "string" "1"' "$t1 $(body '.total_count|type') $(body .total_count)" "total_count: a number, then a string"
ctl 'config?total_count_string=false' >/dev/null

nb_step "429: Retry-After only with --retry-after-header"
ctl 'config?throttle_next=1' >/dev/null
req GET "$B?de_type=Notebook"
expect 429 APIG.0308 "throttled"
nb_assert_eq "" "$(hdr Retry-After)" "no Retry-After by default"
ctl 'config?throttle_next=1&retry_after_header=1&retry_after=4' >/dev/null
req GET "$B?de_type=Notebook"
nb_assert_eq "429 4" "$code $(hdr Retry-After)" "Retry-After when asked"
ctl 'config?retry_after_header=false' >/dev/null

nb_step "injected create errors per name pattern (--inject-error)"
ctl reset >/dev/null
nb_assert_eq 200 "$(ctl 'config?inject_error=ModelArts.6355:wait-*:1,ModelArts.6333:restore-*:2,ModelArts.6326:frozen-*,ModelArts.0108:iam-*,ModelArts.0112:denied-*:0,ModelArts.6329:gone-*')" "set --inject-error"
while IFS='|' read -r http want name; do
        req POST "$B" "$(mk "$name")"
        expect "$http" "$want" "create $name"
done <<EOF
400|ModelArts.6355|wait-1
201||wait-1
400|ModelArts.6355|wait-2
400|ModelArts.6333|restore-1
400|ModelArts.6333|restore-1
201||restore-1
400|ModelArts.6326|frozen-1
403|ModelArts.0108|iam-1
403|ModelArts.0112|denied-1
403|ModelArts.0112|denied-1
400|ModelArts.6329|gone-1
201||fine-1
EOF
req POST "$B" "$(mk denied-2 Python3 no.such.flavor)"
expect 403 ModelArts.0112 "injection comes before the create rules"
nb_assert_match 'modelarts:notebook:create' "$(body -r .error_message)" "the 403 names the denied operation"
nb_assert_eq '{"ModelArts.6355":2,"ModelArts.6333":2,"ModelArts.6326":1,"ModelArts.0108":1,"ModelArts.0112":3,"ModelArts.6329":1}' \
        "$(stats .injected)" "stats.injected by code"
nb_assert_eq '["fine-1","restore-1","wait-1"]' "$(curl -sS -H "X-Project-Id: $P" "$B?de_type=Notebook" | jq -c '[.instances[].name]')" "nothing created by an injected error"
nb_assert_eq '{"requests":2,"created":0,"duplicates":0}' "$(stats '.creates.by_name["denied-1"]')" "injected creates count as requests"
ctl 'delete?name=wait-1' >/dev/null
ctl 'config?inject_error=ModelArts.6355:wait-*:1' >/dev/null
req POST "$B" "$(mk wait-1)"
expect 400 ModelArts.6355 "setting the list again starts the counts afresh"
nb_assert_match '^400 --inject-error: unsupported code' "$(ctl 'config?inject_error=ModelArts.6301:x-*') $(body -r .error)" "an unsupported code is refused at runtime"
nb_assert_eq '"ModelArts.6355:wait-*:1"' "$(curl -sS "$U/_emulator/config" | jq -c .inject_error)" "nothing changed"
ctl 'config?inject_error=' >/dev/null

nb_step "the region's catalog: today's profiles and flavors by default, kinds checked when known"
cfg=$(curl -sS "$U/_emulator/config")
nb_assert_match '(^|,)Ascend-Power-Engine 1\.0\(python3\)=ascend(,|$)' "$(jq -r .profiles <<<"$cfg")" "default profiles"
nb_assert_match '(^|,)modelarts\.bm\.gpu\.v100NV32=gpu(,|$)' "$(jq -r .flavors <<<"$cfg")" "default flavors"
i=0
while IFS='|' read -r http want profile flavor; do
        i=$((i + 1))
        req POST "$B" "$(mk "cat-$i" "$profile" "$flavor")"
        expect "$http" "$want" "$profile on $flavor"
done <<EOF
201||Multi-Engine 2.0 (python3)|modelarts.kat1.xlarge
201||Ascend-Power-Engine 1.0(python3)|modelarts.kat1.xlarge
201||TF-2.1.0&Pytorch-1.4.0-python3.6|modelarts.bm.gpu.v100NV32
201||Multi-Engine 1.0 (python3)-gpu|modelarts.vm.gpu.v100
201||Multi-Engine 1.0 (python2)-cpu|modelarts.vm.cpu.free
201||Python2-gpu|modelarts.vm.gpu.free
400|ModelArts.6330|Ascend-Power-Engine 1.0(python3)|modelarts.vm.gpu.v100
400|ModelArts.6330|Multi-Engine 1.0 (python3)-cpu|modelarts.bm.gpu.v100NV32
400|ModelArts.6330|Python3|modelarts.kat1.xlarge
EOF
nb_assert_eq 200 "$(ctl 'config?flavors=my.flavor%3Dascend,my.cpu%3Dcpu&profiles=My%20Img%20(x)%26y%3Dascend,Python3%3Dcpu,Any%201%3Dany')" "a region of our own (percent-encoded)"
nb_assert_eq '"My Img (x)&y=ascend,Python3=cpu,Any 1=any"' "$(body .profiles)" "decoded"
while IFS='|' read -r http want profile flavor; do
        i=$((i + 1))
        req POST "$B" "$(mk "cat-$i" "$profile" "$flavor")"
        expect "$http" "$want" "$profile on $flavor (own region)"
done <<EOF
201||My Img (x)&y|my.flavor
201||Any 1|my.cpu
400|ModelArts.6330|Python3|my.flavor
400|ModelArts.6336|Python2|my.cpu
400|ModelArts.6323|Python3|modelarts.vm.cpu.2u
EOF
nb_assert_match '^400 bad catalog item "x=tpu"' "$(ctl 'config?flavors=x%3Dtpu') $(body -r .error)" "a bad kind is refused"
ctl "config?flavors=$(jq -r '.flavors|@uri' <<<"$cfg")&profiles=$(jq -r '.profiles|@uri' <<<"$cfg")" >/dev/null
req POST "$B" "$(mk cat-back 'Multi-Engine 2.0 (python3)' modelarts.kat1.xlarge)"
expect 201 "" "the default catalog again"

nb_step "stats.recent_requests: the last 64 API requests, when each was answered"
ctl reset >/dev/null
nb_assert_eq '[]' "$(stats .recent_requests)" "reset empties recent_requests"
ctl 'config?throttle_next=1' >/dev/null
req POST "$B" "$(mk rr-1)"
expect 429 APIG.0308 "throttled create"
req POST "$B" "$(mk rr-1)"
expect 201 "" "the create again"
ID_RR=$(body -r .id)
req GET "$B/$ID_RR"
req GET "$B?de_type=Notebook"
nb_assert_eq '[{"route":"create","status":429,"name":"rr-1"},{"route":"create","status":201,"name":"rr-1"},{"route":"get","status":200,"name":"rr-1"},{"route":"list","status":200,"name":null}]' \
        "$(stats '[.recent_requests[]|del(.mono_ms)]')" "routes, statuses and names, oldest first"
m=$(stats '[.recent_requests[].mono_ms]')
nb_assert_eq true "$(jq 'all(type == "number" and . == floor and . > 0) and (. == sort)' <<<"$m")" "mono_ms: integers, in order ($m)"
urls=()
for i in $(seq 1 70); do urls+=("$B/nope-$i"); done
curl -sS -H "X-Project-Id: $P" "${urls[@]}" >/dev/null
nb_assert_eq '[64,"get",400]' "$(stats '[(.recent_requests|length), .recent_requests[-1].route, .recent_requests[-1].status]')" "only the last 64"
stop_emu

# =====================================================================================
nb_step "fault flags at rate 1.0"
emu --project-id $P --throttle-rate 1 --retry-after 7 --retry-after-header --port-file "$T/port"
nb_assert_eq "${U##*:}" "$(cat "$T/port")" "--port-file"
req POST "$B" "$(mk th-1)"
expect 429 APIG.0308 "--throttle-rate 1"
nb_assert_eq 7 "$(hdr Retry-After)" "--retry-after with --retry-after-header"
req GET "$B?de_type=Notebook"
expect 429 APIG.0308 "--throttle-rate 1 on list"
nb_assert_eq '2 0' "$(stats '"\(.faults.throttled_429) \(.instances.live)"' | tr -d '"')" "429s counted, nothing created"
nb_assert_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$U/_emulator/stats")" "control plane not faulted"
stop_emu

emu --project-id $P --fail-5xx-rate 1 --error-field msg
req POST "$B" "$(mk f-1)"
expect 500 ModelArts.0010 "--fail-5xx-rate 1"
nb_assert_eq '"Internal error (injected)" null' "$(body .error_msg) $(body .error_message)" "--error-field msg: error_msg"
nb_assert_eq '1 0' "$(stats '"\(.faults.internal_500) \(.instances.live)"' | tr -d '"')" "500 counted, nothing created"
stop_emu

emu --project-id $P --drop-after-create-rate 1
rc=0
curl -sS -o "$T/body" -H "X-Project-Id: $P" -H 'Content-Type: application/json' --data-binary "$(mk dropped-1)" "$B" 2>"$T/curl.err" || rc=$?
nb_assert_eq 52 "$rc" "curl sees an empty reply (connection closed, no response) $(cat "$T/curl.err")"
req GET "$B?de_type=Notebook"
expect 200 "" "list after the drop"
nb_assert_eq '["dropped-1"]' "$(body '[.instances[].name]')" "the dropped create did create the instance"
nb_assert_eq '1 1 1' "$(stats '"\(.faults.dropped_after_create) \(.dropped.create) \(.creates.created)"' | tr -d '"')" "drop counted"
nb_assert_eq '{"route":"create","status":0,"name":"dropped-1"}' "$(stats '.recent_requests[0]|del(.mono_ms)')" "recent_requests: a drop has status 0"
stop_emu

emu --project-id $P --slow-ms 600000
rc=0
curl -sS -o /dev/null --max-time 1 -H "X-Project-Id: $P" -H 'Content-Type: application/json' --data-binary "$(mk slow-1)" "$B" 2>/dev/null || rc=$?
nb_assert_eq 28 "$rc" "a client timeout on a slow response"
nb_assert_eq 200 "$(ctl 'config?slow_ms=0')" "slow off"
req GET "$B?de_type=Notebook"
nb_assert_eq '["slow-1"]' "$(body '[.instances[].name]')" "the slow create was made before the wait"
nb_assert_eq 1 "$(stats .faults.slow)" "slow counted"
stop_emu # with a connection still suspended: it must be resumed and the exit clean

emu --project-id $P --latency-ms 200 --create-delay-ms 0
t=$(curl -sS -o "$T/body" -w '%{time_total}' -H "X-Project-Id: $P" "$B?de_type=Notebook")
awk -v t="$t" 'BEGIN { exit !(t >= 0.2) }' || nb_fail "--latency-ms 200 answered after ${t}s"
nb_assert_eq 1 "$(stats .faults.latency)" "latency counted"
stop_emu

nb_step "--seed makes fault draws reproducible"
pattern() { # sets PATTERN (the emulator must be started and stopped by this shell)
        emu --project-id $P --seed 42 --fail-5xx-rate 0.5
        PATTERN=""
        for i in $(seq 1 24); do PATTERN+=$(curl -sS -o /dev/null -w '%{http_code} ' -H "X-Project-Id: $P" "$B/x$i"); done
        stop_emu
}
pattern
p1=$PATTERN
pattern
p2=$PATTERN
nb_assert_eq "$p1" "$p2" "same seed, same faults"
nb_assert_match '500' "$p1" "some 500s at rate 0.5"
nb_assert_match '400' "$p1" "some answers at rate 0.5"

# =====================================================================================
nb_step "AK/SK: signatures verified, failures are gateway 401s, 5 in a row lock the AK"
AK=HPUAEXAMPLEAK0000001
SK=exampleSecretKey0123456789abcdefghijABCD
emu --project-id $P --ak $AK --sk $SK --token tok-123 --create-delay-ms 0
LP=/v1/$P/demanager/instances
sreq POST $LP "" "$(mk signed-1)" $AK $SK
expect 201 "" "signed create"
sreq GET $LP "de_type=Notebook&limit=10&offset=0" "" $AK $SK
expect 200 "" "signed list with a query"
nb_assert_eq '["signed-1"]' "$(body '[.instances[].name]')"
req GET "$B?de_type=Notebook"
expect 401 APIG.0301 "unsigned"
nb_assert_match '^[0-9a-f]{32}$' "$(body -r .request_id)" "401 body has request_id"
sreq GET $LP "de_type=Notebook" "" OTHERAK0000000000000 $SK
expect 401 APIG.0301 "unknown AK"
sreq GET $LP "de_type=Notebook" "" $AK $SK "$(date -u -d '-20 minutes' +%Y%m%dT%H%M%SZ)"
expect 401 APIG.0301 "X-Sdk-Date 20 minutes old"
sreq GET $LP "de_type=Notebook" "" $AK $SK "$(date -u -d '+10 minutes' +%Y%m%dT%H%M%SZ)"
expect 200 "" "X-Sdk-Date 10 minutes ahead is within 15"
# a body changed after signing
d=$(date -u +%Y%m%dT%H%M%SZ)
a=$(sign POST "${U#http://}" $LP "" "$(mk signed-2)" "$d" $AK $SK $P)
req POST "$B" "$(mk signed-3)" -H "X-Sdk-Date: $d" -H "Authorization: $a"
expect 401 APIG.0301 "body changed after signing"
nb_assert_eq '[1,1,1,1,0]' "$(stats '.protocol_violations|[.missing_auth,.unknown_ak,.clock_skew,.bad_signature,.ak_locked]')" "auth violations"
for i in 2 3 4 5; do
        sreq GET $LP "de_type=Notebook" "" $AK WRONG-SECRET
        expect 401 APIG.0301 "bad signature $i"
done
nb_assert_eq true "$(stats .auth.ak_locked)" "locked after 5 bad signatures in a row"
sreq GET $LP "de_type=Notebook" "" $AK $SK
expect 401 APIG.0301 "right signature while locked"
nb_assert_match 'locked' "$(body -r .error_msg)" "the 401 says locked"
nb_assert_eq 0 "$(stats '.creates.by_name["signed-3"].created // 0')" "nothing created by a bad signature"

nb_step "X-Auth-Token"
req GET "$B?de_type=Notebook" "" -H "X-Auth-Token: tok-123"
expect 200 "" "right token (the AK lock is about AK/SK only)"
req GET "$B?de_type=Notebook" "" -H "X-Auth-Token: tok-999"
expect 401 ModelArts.0201 "wrong token"
nb_assert_file_no_match "$(emu_log)" "$SK|tok-123" "secrets in the emulator's output"
curl -sS "$U/_emulator/config" | grep -q -e "$SK" -e tok-123 && nb_fail "a secret in /_emulator/config"
nb_assert_eq 200 "$(ctl reset)" "reset also clears the lock"
sreq GET $LP "de_type=Notebook" "" $AK $SK
expect 200 "" "signed after reset"
stop_emu

echo "PASS t-emulator" >&2
