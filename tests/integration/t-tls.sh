#!/usr/bin/env bash
# TLS against a real server on loopback: Debian's nginx terminates
# TLS in front of the emulator, with certificates from a throwaway CA made here by
# openssl. `notebookd once` shows that:
#   1. verification is on: the private CA's certificate, without `ca_file:`, is refused
#      ("unable to get local issuer certificate") and nothing reaches the API;
#   2. with `ca_file:`, a wrong-host, an expired and a self-signed certificate are each
#      refused, the error naming its reason, and nothing reaches the API;
#   3. with `ca_file:`, the private CA works: a burst of 50 creates (concurrency 16)
#      converges, each instance created exactly once, and nginx's access log shows every
#      create and list went over HTTP/2 ($server_protocol), the creates sharing
#      connections (an origin that answered over HTTP/2 gets its POSTs multiplexed);
#   4. against a server that offers only HTTP/1.1, the same client speaks HTTP/1.1: the
#      access log's protocol field tells the two apart, and there each create still
#      goes on a connection of its own (lib/http.c's CURLOPT_FRESH_CONNECT);
#   5. creates in flight on a shared h2 connection that dies (nginx's worker killed
#      while the emulator holds their answers) are not sent again behind notebookd's
#      back: each reached the emulator once, and `once` settles them by listing. (curl
#      7.88 reports the open streams of a dead h2 connection as failed and resends
#      nothing; the resend lib/http.c refuses, of a dead reused connection, is
#      test-http's test_post_on_shared_connection_never_resent.)
# nginx runs from $T as a tracked child (`daemon off`), so the harness stops it at exit.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=TLSTESTAK00000000001
SK=tlsTestSecretKey0123456789abcdefghijklMN
PROJECT=7e57715000000000000000000000cafe
N=50 # the burst

NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || nb_fail "nginx missing: apt-get install nginx (make deps)"
command -v openssl >/dev/null || nb_fail "openssl missing: apt-get install openssl (make deps)"

# --log: part 5 waits for the emulator's line of each create it handled.
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 --seed 443 --log
EMULATOR_PORT=${NB_EMULATOR_URL##*:}

# ---- the throwaway CA and the servers' certificates ----
PKI=$T/pki
mkdir -p "$PKI/issued"
: >"$PKI/index.txt"
echo 01 >"$PKI/serial"
# `openssl ca` rather than `x509 -req`: OpenSSL 3.0's x509 and req only take -days, and
# an expired certificate needs a validity period in the past (-startdate/-enddate).
cat >"$PKI/openssl.cnf" <<EOF
[ca]
default_ca = throwaway
[throwaway]
database = $PKI/index.txt
new_certs_dir = $PKI/issued
serial = $PKI/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF

openssl_q() { # ARGS...: openssl, its chatter in $PKI/openssl.log (shown on failure)
        openssl "$@" >>"$PKI/openssl.log" 2>&1 || nb_fail "openssl $1 failed: $(tail -n 5 "$PKI/openssl.log")"
}

new_key_csr() { # NAME
        openssl_q req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -config "$PKI/openssl.cnf" \
                -subj "/CN=notebookd test $1" -keyout "$PKI/$1.key" -out "$PKI/$1.csr"
}

# A server certificate signed by the CA: NAME SUBJECT_ALT_NAME [openssl ca validity options]
issue() {
        local name=$1 san=$2
        shift 2
        printf '%s\n' 'basicConstraints = critical,CA:FALSE' \
                'keyUsage = critical,digitalSignature,keyEncipherment' \
                'extendedKeyUsage = serverAuth' "subjectAltName = $san" >"$PKI/$name.ext"
        new_key_csr "$name"
        openssl_q ca -batch -notext -config "$PKI/openssl.cnf" -cert "$PKI/ca.pem" -keyfile "$PKI/ca.key" \
                -extfile "$PKI/$name.ext" -in "$PKI/$name.csr" -out "$PKI/$name.pem" "$@"
}

nb_step "a throwaway CA and four server certificates"
openssl_q req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -config "$PKI/openssl.cnf" \
        -extensions ca_ext -days 2 -subj "/CN=notebookd throwaway test CA" -keyout "$PKI/ca.key" -out "$PKI/ca.pem"
issue good "DNS:localhost,IP:127.0.0.1" -days 2
issue wronghost "DNS:wrong-host.invalid" -days 2
issue expired "DNS:localhost,IP:127.0.0.1" -startdate 20200101000000Z -enddate 20200102000000Z
# Self-signed: its own issuer, valid for the right host and dates, not from the CA.
openssl_q req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -config "$PKI/openssl.cnf" \
        -days 2 -subj "/CN=notebookd test selfsigned" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$PKI/selfsigned.key" -out "$PKI/selfsigned.pem"

# The certificates are what each case says, checked with openssl itself, so a refusal
# below is for the reason named and not an accident of how the certificate was made.
verify() { openssl verify -CAfile "$PKI/ca.pem" "$@" 2>&1 || true; }
nb_assert_match ': OK$' "$(verify "$PKI/good.pem")" "good.pem verifies against the CA"
nb_assert_match ': OK$' "$(verify "$PKI/wronghost.pem")" "wronghost.pem verifies against the CA (only its name is wrong)"
nb_assert_match 'certificate has expired' "$(verify "$PKI/expired.pem")" "expired.pem"
nb_assert_match 'self[- ]signed certificate' "$(verify "$PKI/selfsigned.pem")" "selfsigned.pem"
nb_assert_match ': OK$' "$(verify -verify_hostname localhost "$PKI/good.pem")" "good.pem names localhost"
nb_assert_match 'IP address mismatch' "$(verify -verify_ip 127.0.0.1 "$PKI/wronghost.pem")" "wronghost.pem for 127.0.0.1"

# ---- nginx ----
NGX=$T/nginx
mkdir -p "$NGX/tmp"
ACCESS_LOG=$T/nginx-access.log
ERROR_LOG=$T/nginx-error.log # in $T: the harness prints *.log tails on failure

# Ports below the kernel's ephemeral range, so no client socket of this or another test
# holds one by chance; a port taken by another listener makes nginx fail to bind, and
# start_nginx tries other ports (bounded).
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range
PORT_LOW=20000
[ "$EPHEMERAL_LOW" -gt $((PORT_LOW + 1000)) ] || PORT_LOW=10000
pick_port() { echo $((PORT_LOW + (SRANDOM % (EPHEMERAL_LOW - PORT_LOW)))); }

write_nginx_conf() {
        local user=""
        # Workers as root (the test runs as root anyway) so they may use $T's temp dirs.
        [ "$(id -u)" = 0 ] && user="user root root;"
        cat >"$NGX/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
$user
pid $NGX/nginx.pid;
error_log $ERROR_LOG notice;
events { worker_connections 512; }
http {
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    # One line per request: which server, which protocol, which connection (nginx's
    # serial number) and the how-many-th request on it.
    log_format nb '\$server_port \$server_protocol conn=\$connection req=\$connection_requests \$request_method \$uri \$status';
    access_log $ACCESS_LOG nb;
    upstream emulator {
        server 127.0.0.1:$EMULATOR_PORT;
        keepalive 16;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    # The request is signed over its Host: pass the client's on unchanged (over h2,
    # nginx makes it from :authority).
    proxy_set_header Host \$http_host;
    proxy_buffering off;
    # nginx 1.22 (Debian 12): HTTP/2 is a flag of "listen", not the later "http2 on;".
    server {
        listen 127.0.0.1:$PORT_GOOD ssl http2;
        ssl_certificate $PKI/good.pem;
        ssl_certificate_key $PKI/good.key;
        location / { proxy_pass http://emulator; }
    }
    server {
        listen 127.0.0.1:$PORT_H1 ssl;
        ssl_certificate $PKI/good.pem;
        ssl_certificate_key $PKI/good.key;
        location / { proxy_pass http://emulator; }
    }
    server {
        listen 127.0.0.1:$PORT_WRONGHOST ssl http2;
        ssl_certificate $PKI/wronghost.pem;
        ssl_certificate_key $PKI/wronghost.key;
        location / { proxy_pass http://emulator; }
    }
    server {
        listen 127.0.0.1:$PORT_EXPIRED ssl http2;
        ssl_certificate $PKI/expired.pem;
        ssl_certificate_key $PKI/expired.key;
        location / { proxy_pass http://emulator; }
    }
    server {
        listen 127.0.0.1:$PORT_SELFSIGNED ssl http2;
        ssl_certificate $PKI/selfsigned.pem;
        ssl_certificate_key $PKI/selfsigned.key;
        location / { proxy_pass http://emulator; }
    }
}
EOF
}

# Wait until nginx's master logs that it started its workers (its sockets are bound by
# then) or says [emerg] (it then exits), following its error log: 0 when started.
nginx_started() { # PID
        local fd follower line=""
        exec {fd}< <(exec timeout "$NB_TIMEOUT" tail -n +1 -F --pid="$1" -- "$ERROR_LOG" 2>/dev/null)
        follower=$!
        line=$(grep -m1 -E 'start worker processes|\[emerg\]' <&"$fd") || true
        kill "$follower" 2>/dev/null || true
        exec {fd}<&-
        [[ $line == *'start worker processes'* ]]
}

start_nginx() {
        local attempt
        for attempt in 1 2 3 4 5; do
                PORT_GOOD=$(pick_port) PORT_H1=$(pick_port) PORT_WRONGHOST=$(pick_port)
                PORT_EXPIRED=$(pick_port) PORT_SELFSIGNED=$(pick_port)
                [ "$(printf '%s\n' "$PORT_GOOD" "$PORT_H1" "$PORT_WRONGHOST" "$PORT_EXPIRED" "$PORT_SELFSIGNED" |
                        sort -u | wc -l)" -eq 5 ] || continue
                write_nginx_conf
                : >"$ERROR_LOG"
                nb_spawn nginx "$NGINX" -p "$NGX" -e "$ERROR_LOG" -c "$NGX/nginx.conf"
                NGINX_PID=$NB_PID
                nginx_started "$NGINX_PID" && return 0
                nb_stop "$NGINX_PID" # exited already, or hung: reap it
                grep -q 'Address already in use' "$ERROR_LOG" ||
                        nb_fail "nginx did not start: $(tail -n 5 "$ERROR_LOG" "$T/nginx.log")"
                echo "nginx: a port was taken (attempt $attempt), trying others" >&2
        done
        nb_fail "nginx could not bind free ports in 5 attempts"
}

nb_step "nginx in front of the emulator ($NB_EMULATOR_URL)"
start_nginx
nb_step "nginx: h2 $PORT_GOOD, http/1.1 $PORT_H1, wrong host $PORT_WRONGHOST, expired $PORT_EXPIRED, self-signed $PORT_SELFSIGNED"
# The proxy works, and offers h2 (curl's own view, independent of notebookd's client).
nb_assert_eq "2 200" "$(curl -sS --cacert "$PKI/ca.pem" -o /dev/null -w '%{http_version} %{http_code}' \
        "https://127.0.0.1:$PORT_GOOD/_emulator/stats")" "curl through nginx's h2 server: HTTP version, status"

# ---- notebookd ----
API_PATH="/v1/$PROJECT/demanager/instances"
M=$T/manifests
mkdir -p "$M"
for i in $(seq -w 1 "$N"); do
        nb_write_manifest "$M/tls-$i.yaml" "tls-$i"
done
printf 'concurrency: 16\n' >"$T/config-noca.yaml"
printf 'concurrency: 16\nca_file: %s\n' "$PKI/ca.pem" >"$T/config-ca.yaml"

# run_once CONFIG PORT [OPTION...]: sets rc; output in $T/once.{stdout,stderr}.log.
# `timeout` only turns a hang into a failure; it is not a speed assertion.
run_once() {
        local config=$1 port=$2
        shift 2
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                -u CURL_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
                timeout 300 "$NOTEBOOKD" -c "$config" -m "$M" -s "$T/state" -e "https://127.0.0.1:$port" \
                -p "$PROJECT" --log-target=console "$@" once >"$T/once.stdout.log" 2>"$T/once.stderr.log" || rc=$?
}

api_requests() { # the emulator's count of API requests (its own /_emulator calls excluded)
        nb_emulator_stats | jq '.by_route | .create + .list + .get + .delete + .action + .unknown'
}

# A refused server: once gives up at its deadline (a TLS failure is retried like any
# connection failure, so the exit is 3, "work left undone"), the error names REASON, and
# not one request reached the API.
refused() { # CONFIG PORT REASON_ERE WHAT
        local config=$1 port=$2 re=$3 what=$4 line
        # --timeout: how long once retries before giving up; not a speed assertion.
        run_once "$config" "$port" --timeout 5
        nb_assert_eq 3 "$rc" "$what: once exit status"
        nb_assert_file_match "$T/once.stderr.log" "$re" "$what: once's log names the reason"
        line=$(grep -m1 -E -- "$re" "$T/once.stderr.log")
        echo "   notebookd said: $line" >&2
        nb_assert_eq 0 "$(api_requests)" "$what: API requests that reached the emulator"
        nb_assert_eq 0 "$(grep -c "^$port .* $API_PATH " "$ACCESS_LOG" || true)" "$what: API requests in nginx's access log"
        rm -rf "$T/state"
}

# ---- 1. verification is on ----
nb_step "the private CA without ca_file: refused (verification is on)"
refused "$T/config-noca.yaml" "$PORT_GOOD" 'SSL certificate problem: unable to get local issuer certificate' "no ca_file"

# ---- 2. bad certificates, each refused for its reason ----
nb_step "with ca_file: a wrong-host certificate is refused"
refused "$T/config-ca.yaml" "$PORT_WRONGHOST" \
        "no alternative certificate subject name matches target host name '127\.0\.0\.1'" "wrong host"
nb_step "with ca_file: an expired certificate is refused"
refused "$T/config-ca.yaml" "$PORT_EXPIRED" 'SSL certificate problem: certificate has expired' "expired"
nb_step "with ca_file: a self-signed certificate is refused"
refused "$T/config-ca.yaml" "$PORT_SELFSIGNED" 'SSL certificate problem: self[- ]signed certificate' "self-signed"

# ---- 3. ca_file makes the private CA work; a burst of creates over h2 ----
nb_step "with ca_file: once creates $N instances over HTTP/2, each exactly once"
run_once "$T/config-ca.yaml" "$PORT_GOOD" --timeout 120
nb_assert_eq 0 "$rc" "once through nginx with ca_file: exit status"
nb_assert_file_no_match "$T/once.stderr.log" 'SSL|certificate' "once's log (no TLS error)"
nb_emulator_stats >"$T/stats1.json"
nb_assert_eq "$N" "$(jq '.creates.requests' "$T/stats1.json")" "create requests"
nb_assert_eq "$N" "$(jq '.creates.created' "$T/stats1.json")" "instances created"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats1.json")" "duplicate creates"
nb_assert_eq "$N" "$(jq '.instances.live' "$T/stats1.json")" "live instances"
bad=$(jq -r '.creates.by_name | to_entries[] | select(.value.requests != 1 or .value.created != 1) | "\(.key) \(.value)"' "$T/stats1.json")
[ -z "$bad" ] || nb_fail "not exactly one create per name: $bad"
nb_assert_eq "$N" "$(jq '.creates.by_name | length' "$T/stats1.json")" "names created"
nb_assert_eq 0 "$(jq '.protocol_violations.total' "$T/stats1.json")" \
        "protocol violations through the proxy ($(jq -c '.recent_violations' "$T/stats1.json"))"

# nginx writes a request's line when it closes the stream, which may be a moment after the
# client has its answer: wait for the lines (event-driven), then read them.
nb_wait_for_line "$ACCESS_LOG" "^$PORT_GOOD [^ ]+ conn=[0-9]+ req=[0-9]+ POST $API_PATH 201\$" "$NB_TIMEOUT" "$N" >/dev/null
nb_wait_for_line "$ACCESS_LOG" "^$PORT_GOOD [^ ]+ conn=[0-9]+ req=[0-9]+ GET $API_PATH 200\$" >/dev/null
grep "^$PORT_GOOD .* $API_PATH" "$ACCESS_LOG" >"$T/h2-api.log" || true
nb_assert_eq 0 "$(grep -vc "^$PORT_GOOD HTTP/2.0 " "$T/h2-api.log" || true)" \
        "API requests to the h2 server not over HTTP/2.0 ($(grep -v -m3 "^$PORT_GOOD HTTP/2.0 " "$T/h2-api.log" | tr '\n' ';'))"
posts=$(grep -c " POST $API_PATH " "$T/h2-api.log" || true)
lists=$(grep -c " GET $API_PATH " "$T/h2-api.log" || true)
nb_assert_eq "$N" "$posts" "creates over HTTP/2.0 in nginx's access log"
[ "$lists" -ge 1 ] || nb_fail "no listing over HTTP/2.0 in nginx's access log"
# The listing answered over h2 before the first create, so the creates share
# connections: at most one per request in flight (16), where a fresh connection per
# create would be 50; and some create rode a connection that carried a request before it.
post_conns=$(grep " POST $API_PATH " "$T/h2-api.log" | awk '{print $3}' | sort -u | wc -l)
[ "$post_conns" -le 16 ] || nb_fail "the $N creates over h2 used $post_conns connections (at most 16 expected: shared)"
[ "$(grep " POST $API_PATH " "$T/h2-api.log" | grep -vc ' req=1 ' || true)" -gt 0 ] ||
        nb_fail "every create over h2 was the first request on its connection (none shared)"
conns=$(awk '{print $3}' "$T/h2-api.log" | sort -u | wc -l)
multi=$(awk '$4 != "req=1" {print $3}' "$T/h2-api.log" | sort -u | wc -l)
nb_step "h2: $posts creates and $lists lists over $conns connections ($multi of them carried more than one request)"

# ---- 4. the second run converges, over h2; an HTTP/1.1-only server gets HTTP/1.1 ----
nb_step "a second once over h2 creates nothing"
run_once "$T/config-ca.yaml" "$PORT_GOOD" --timeout 120
nb_assert_eq 0 "$rc" "second once: exit status"
nb_assert_eq "$N" "$(nb_emulator_stats | jq '.creates.requests')" "create requests after the second run (unchanged)"

nb_step "the same client against a server without h2 speaks HTTP/1.1, a fresh connection per create"
rm -rf "$T/state"
H1=5
for i in $(seq 1 "$H1"); do
        nb_write_manifest "$M/tls-h1-$i.yaml" "tls-h1-$i"
done
run_once "$T/config-ca.yaml" "$PORT_H1" --timeout 120
nb_assert_eq 0 "$rc" "once against the HTTP/1.1 server: exit status"
nb_assert_eq "$((N + H1))" "$(nb_emulator_stats | jq '.creates.requests')" \
        "create requests after the run without state (the $N adopted, the $H1 new created)"
nb_wait_for_line "$ACCESS_LOG" "^$PORT_H1 [^ ]+ conn=[0-9]+ req=[0-9]+ POST $API_PATH 201\$" "$NB_TIMEOUT" "$H1" >/dev/null
nb_wait_for_line "$ACCESS_LOG" "^$PORT_H1 [^ ]+ conn=[0-9]+ req=[0-9]+ GET $API_PATH 200\$" >/dev/null
nb_assert_eq 0 "$(grep "^$PORT_H1 .* $API_PATH" "$ACCESS_LOG" | grep -vc "^$PORT_H1 HTTP/1.1 " || true)" \
        "API requests to the HTTP/1.1-only server not over HTTP/1.1"
# Over HTTP/1.1 a server closing a kept connection is routine, so each create still gets
# a connection of its own (CURLOPT_FRESH_CONNECT) and is its first request.
nb_assert_eq 0 "$(grep "^$PORT_H1 .* POST $API_PATH " "$ACCESS_LOG" | grep -vc ' req=1 ' || true)" \
        "creates over HTTP/1.1 that were not the first request on their connection"
nb_assert_eq "$H1" "$(grep "^$PORT_H1 .* POST $API_PATH " "$ACCESS_LOG" | awk '{print $3}' | sort -u | wc -l)" \
        "distinct connections carrying the $H1 creates over HTTP/1.1"

# ---- 5. creates on a shared h2 connection that dies are not sent again ----
nb_step "creates in flight on a shared h2 connection that dies: each reaches the API once"
LOST=3
for i in $(seq 1 "$LOST"); do
        nb_write_manifest "$M/tls-lost-$i.yaml" "tls-lost-$i"
done
creates_before=$(grep -c " POST \"$API_PATH\" -> " "$T/emulator.log" || true)
# The emulator makes each instance, then holds the answer: the creates are in flight on
# the connection the listing used, when that connection dies.
nb_emulator_config 'slow_ms=3600000&slow_rate=1&fault_routes=create'
nb_spawn once-lost env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
        -u CURL_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" \
        "$NOTEBOOKD" -c "$T/config-ca.yaml" -m "$M" -s "$T/state" -e "https://127.0.0.1:$PORT_GOOD" \
        -p "$PROJECT" --log-target=console --timeout 120 once
ONCE_PID=$NB_PID
nb_wait_for_line "$T/emulator.log" " POST \"$API_PATH\" -> 201" "$NB_TIMEOUT" \
        "$((creates_before + LOST))" >/dev/null
nb_emulator_config 'slow_ms=0&fault_routes=all'
# nginx's workers are the master's children; killing them resets every client connection
# (the master starts new ones, which serve the listing that settles the creates).
workers=$(awk -v m="$NGINX_PID" '$4 == m {print $1}' /proc/[0-9]*/stat 2>/dev/null)
[ -n "$workers" ] || nb_fail "no nginx worker found under master $NGINX_PID"
kill -KILL $workers
nb__reap "$ONCE_PID" "$NB_TIMEOUT"
nb__untrack "$ONCE_PID"
nb_assert_eq 0 "$NB_STATUS" "once whose creates were lost with their connection: exit status ($(tail -n 3 "$T/once-lost.log"))"
nb_emulator_stats >"$T/stats5.json"
for i in $(seq 1 "$LOST"); do
        nb_assert_eq 1 "$(jq --arg n "tls-lost-$i" '.creates.by_name[$n].requests' "$T/stats5.json")" \
                "create requests for tls-lost-$i (sent once, never again behind notebookd's back)"
done
nb_assert_eq "$((N + H1 + LOST))" "$(jq '.instances.live' "$T/stats5.json")" "live instances"
nb_assert_eq 0 "$(jq '.creates.duplicates' "$T/stats5.json")" "duplicate creates"
nb_assert_file_match "$T/once-lost.log" "tls-lost-1" "once's log names the lost create"

nb_step "ok"
