#!/usr/bin/env bash
# The emulator against the ModelArts API contract (modelarts-api.md in the project's
# shared docs), driven with curl and jq:
# create / list paging / get / delete / start-stop, ModelArts.6301, the create rules,
# de_type, project checks, stats, the control plane, AK/SK signatures (signed here by an
# independent bash+openssl signer, itself checked against the published vector), tokens,
# the AK lock, and every fault flag at rate 1.0. notebookd's own tests live elsewhere.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

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

# ---- an independent SDK-HMAC-SHA256 signer (modelarts-api.md, Authentication) ----
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

nb_step "start/stop actions"
ID_B=$(curl -sS -H "X-Project-Id: $P" "$B?de_type=Notebook" | jq -r '.instances[]|select(.name=="p-b").id')
req POST "$B/$ID_B/action" '{"action":"stop"}'
expect 200 "" "stop"
nb_assert_eq '{"current_status":"STOPPING","previous_state":"RUNNING"}' "$(body)" "stop answer"
req GET "$B/$ID_B"
nb_assert_eq '"STOPPED"' "$(body .status)" "stopped (no action delay)"
req POST "$B/$ID_B/action" '{"action":"stop"}'
expect 400 ModelArts.6357 "stop a stopped instance"
req POST "$B/$ID_B/action" '{"action":"reboot"}'
expect 400 ModelArts.6336 "unknown action"
req POST "$B/$ID_B/action" '{"action":"start"}'
expect 200 "" "start"
req GET "$B/$ID_B"
nb_assert_eq '"RUNNING"' "$(body .status)" "running again"

nb_step "delete"
req DELETE "$B/$ID_B"
expect 200 "" "delete"
nb_assert_eq "\"$ID_B\"" "$(body .instance_id)"
req DELETE "$B/$ID_B"
expect 400 ModelArts.6309 "delete again"

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
req POST "$B" "$(mk t-1)"
expect 429 APIG.0308 "throttled"
nb_assert_eq 3 "$(hdr Retry-After)" "Retry-After"
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
nb_step "fault flags at rate 1.0"
emu --project-id $P --throttle-rate 1 --retry-after 7 --port-file "$T/port"
nb_assert_eq "${U##*:}" "$(cat "$T/port")" "--port-file"
req POST "$B" "$(mk th-1)"
expect 429 APIG.0308 "--throttle-rate 1"
nb_assert_eq 7 "$(hdr Retry-After)" "--retry-after"
req GET "$B?de_type=Notebook"
expect 429 APIG.0308 "--throttle-rate 1 on list"
nb_assert_eq '2 0' "$(stats '"\(.faults.throttled_429) \(.instances.live)"' | tr -d '"')" "429s counted, nothing created"
nb_assert_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$U/_emulator/stats")" "control plane not faulted"
stop_emu

emu --project-id $P --fail-5xx-rate 1 --legacy-errors
req POST "$B" "$(mk f-1)"
expect 500 ModelArts.0010 "--fail-5xx-rate 1"
nb_assert_eq 'Internal error (injected)' "$(body -r .error_message)" "--legacy-errors: error_message"
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
