#!/usr/bin/env bash
# Proxies: notebookd through a real forward proxy (Debian's tinyproxy, run from $T with
# its own config, never the system's service), HTTPS by CONNECT to an nginx TLS front of
# the emulator (a throwaway CA, as t-tls.sh does). The endpoint is https://modelarts.test:
# a name, not a loopback address (loopback never goes through a proxy), which this test's
# private mount namespace maps to 127.0.0.1 with a bind-mounted /etc/hosts, so that both
# tinyproxy and notebookd resolve it with the system resolver and the host's files stay
# untouched.
#   1. proxy: in the config (with a user and password, as tinyproxy's BasicAuth wants):
#      creates converge, the proxy's log shows the CONNECT to modelarts.test, and the
#      password appears nowhere notebookd writes (stdout, stderr at debug level, state);
#      check -c warns that it belongs in an EnvironmentFile=, without repeating it;
#   2. https_proxy in the environment, no key: through the proxy (libcurl's variable);
#   3. the key wins over the environment: https_proxy names a dead port, proxy: the real
#      one, and the creates go through the real one;
#   4. no_proxy: [modelarts.test]: direct (the proxy's log unchanged, nginx saw it), and
#      no_proxy=modelarts.test in the environment likewise (notebookd sets
#      CURLOPT_NOPROXY, so it must carry the environment's list over);
#   5. the emulator's loopback endpoint with proxy: set: direct (the proxy's log
#      unchanged), and with a dead proxy: still direct.
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=PROXYTESTAK000000001
SK=proxyTestSecretKey0123456789abcdefghijKL
PROJECT=9f0e1d2c3b4a59687766554433221100
HOST=modelarts.test
PROXY_USER=nbproxy
PROXY_PASSWORD=pr0xyPassw0rdNeverLogged
DEAD=http://127.0.0.1:1 # tcpmux: nothing listens there; a connection is refused at once

TINYPROXY=${TINYPROXY:-/usr/bin/tinyproxy}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$TINYPROXY" ] || nb_fail "tinyproxy missing: apt-get install tinyproxy-bin (make deps)"
[ -x "$NGINX" ] || nb_fail "nginx missing: apt-get install nginx (make deps)"
command -v openssl >/dev/null || nb_fail "openssl missing: apt-get install openssl (make deps)"
[ "$NB_IN_NAMESPACE" = 1 ] ||
        nb_fail "this test maps $HOST in a private /etc/hosts: it needs root and unshare --mount (uid $(id -u))"

# ---- the name, in this mount namespace only ----
nb_step "$HOST -> 127.0.0.1 in a private /etc/hosts"
{ cat /etc/hosts 2>/dev/null || true; echo "127.0.0.1 $HOST"; } >"$T/hosts"
mount --bind "$T/hosts" /etc/hosts
nb_assert_eq "127.0.0.1" "$(getent ahostsv4 "$HOST" | awk 'NR == 1 {print $1}')" "$HOST resolves to"

nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 0 --seed 3128
EMULATOR_PORT=${NB_EMULATOR_URL##*:}

# ---- a throwaway CA and a certificate for $HOST ----
PKI=$T/pki
mkdir -p "$PKI"
openssl_q() { openssl "$@" >>"$PKI/openssl.log" 2>&1 || nb_fail "openssl $1 failed: $(tail -n 5 "$PKI/openssl.log")"; }
openssl_q req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=notebookd proxy test CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$PKI/ca.key" -out "$PKI/ca.pem"
openssl_q req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$HOST" \
        -keyout "$PKI/server.key" -out "$PKI/server.csr"
printf '%s\n' 'basicConstraints = critical,CA:FALSE' 'keyUsage = critical,digitalSignature' \
        'extendedKeyUsage = serverAuth' "subjectAltName = DNS:$HOST" >"$PKI/server.ext"
openssl_q x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial -days 2 \
        -extfile "$PKI/server.ext" -out "$PKI/server.pem"

# Ports below the ephemeral range, so no client socket holds one by chance; one taken by
# another listener makes the server fail to bind, and the start is tried again elsewhere.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range
PORT_LOW=20000
[ "$EPHEMERAL_LOW" -gt $((PORT_LOW + 1000)) ] || PORT_LOW=10000
pick_port() { echo $((PORT_LOW + (SRANDOM % (EPHEMERAL_LOW - PORT_LOW)))); }

# Follow LOG until a line matches READY (0) or FAILED, or PID exits (1).
started() { # PID LOG READY FAILED
        local fd follower line=""
        exec {fd}< <(nb__bg timeout "$NB_TIMEOUT" tail -n +1 -F --pid="$1" -- "$2" 2>/dev/null)
        follower=$!
        line=$(grep -m1 -E "$3|$4" <&"$fd") || true
        kill "$follower" 2>/dev/null || true
        exec {fd}<&-
        [[ $line =~ $3 ]]
}

# ---- nginx: TLS for $HOST in front of the emulator ----
NGX=$T/nginx
mkdir -p "$NGX/tmp"
ACCESS_LOG=$T/nginx-access.log
ERROR_LOG=$T/nginx-error.log
start_nginx() {
        local attempt user=""
        [ "$(id -u)" = 0 ] && user="user root root;"
        for attempt in 1 2 3 4 5; do
                NGINX_PORT=$(pick_port)
                cat >"$NGX/nginx.conf" <<EOF
daemon off;
worker_processes 1;
$user
pid $NGX/nginx.pid;
error_log $ERROR_LOG notice;
events { worker_connections 256; }
http {
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    log_format nb '\$remote_addr \$request_method \$uri \$status';
    access_log $ACCESS_LOG nb;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;   # the request is signed over its Host
    server {
        listen 127.0.0.1:$NGINX_PORT ssl http2;
        ssl_certificate $PKI/server.pem;
        ssl_certificate_key $PKI/server.key;
        location / { proxy_pass http://127.0.0.1:$EMULATOR_PORT; }
    }
}
EOF
                : >"$ERROR_LOG"
                nb_spawn nginx "$NGINX" -p "$NGX" -e "$ERROR_LOG" -c "$NGX/nginx.conf"
                started "$NB_PID" "$ERROR_LOG" 'start worker processes' '\[emerg\]' && return 0
                nb_stop "$NB_PID"
                grep -q 'Address already in use' "$ERROR_LOG" || nb_fail "nginx did not start: $(tail -n 5 "$ERROR_LOG")"
        done
        nb_fail "nginx could not bind a free port in 5 attempts"
}

# ---- tinyproxy: a forward proxy from $T, with a user and password ----
PROXY_LOG=$T/tinyproxy.log
start_tinyproxy() {
        local attempt
        for attempt in 1 2 3 4 5; do
                PROXY_PORT=$(pick_port)
                # No ConnectPort line: CONNECT to any port (nginx's is not 443). Info: it
                # says when it accepts connections, and logs each request with its line.
                cat >"$T/tinyproxy.conf" <<EOF
Port $PROXY_PORT
Listen 127.0.0.1
Timeout 60
LogLevel Info
MaxClients 64
BasicAuth $PROXY_USER $PROXY_PASSWORD
EOF
                # -d: foreground, logging to stderr (the harness's $T/tinyproxy.log)
                nb_spawn tinyproxy "$TINYPROXY" -d -c "$T/tinyproxy.conf"
                started "$NB_PID" "$PROXY_LOG" 'Accepting connections' 'Could not create listening sockets' && return 0
                nb_stop "$NB_PID"
                grep -q 'Could not create listening sockets' "$PROXY_LOG" ||
                        nb_fail "tinyproxy did not start: $(tail -n 5 "$PROXY_LOG")"
        done
        nb_fail "tinyproxy could not bind a free port in 5 attempts"
}

nb_step "nginx (TLS for $HOST) and tinyproxy"
start_nginx
start_tinyproxy
PROXY=http://$PROXY_USER:$PROXY_PASSWORD@127.0.0.1:$PROXY_PORT
ENDPOINT=https://$HOST:$NGINX_PORT
nb_step "endpoint $ENDPOINT, proxy 127.0.0.1:$PROXY_PORT, emulator $NB_EMULATOR_URL"
# The set-up itself, seen by curl (independently of notebookd): through the proxy...
nb_assert_eq 200 "$(curl -sS --cacert "$PKI/ca.pem" --noproxy '' -x "$PROXY" -o /dev/null -w '%{http_code}' \
        "$ENDPOINT/_emulator/health")" "curl through tinyproxy to nginx"
# ...which refuses a client without the password (so a success below went through it)
nb_assert_eq 407 "$(curl -sS --cacert "$PKI/ca.pem" --noproxy '' -x "http://127.0.0.1:$PROXY_PORT" -o /dev/null \
        -w '%{http_connect}' "$ENDPOINT/_emulator/health" 2>/dev/null || true)" "tinyproxy without the password"

# ---- notebookd ----
M=$T/manifests
mkdir -p "$M"
connects() { grep -c "Request (file descriptor [0-9]*): CONNECT $HOST:$NGINX_PORT " "$PROXY_LOG" || true; }
requests() { grep -c 'Request (file descriptor' "$PROXY_LOG" || true; }

# run_once NAME CONFIG ENDPOINT [VAR=VALUE...]: a new manifest NAME, then once with the
# test's credentials and only the proxy variables given; sets rc, output in
# $T/once-NAME.{out,err}. `timeout` only turns a hang into a failure.
run_once() {
        local name=$1 config=$2 endpoint=$3
        shift 3
        nb_write_manifest "$M/$name.yaml" "$name"
        rc=0
        env -u CREDENTIALS_DIRECTORY -u HUAWEICLOUD_SDK_SECURITY_TOKEN -u HUAWEICLOUD_SDK_PROJECT_ID \
                -u https_proxy -u HTTPS_PROXY -u http_proxy -u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY \
                -u CURL_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR \
                HUAWEICLOUD_SDK_AK="$AK" HUAWEICLOUD_SDK_SK="$SK" "$@" \
                timeout 300 "$NOTEBOOKD" -c "$config" -m "$M" -s "$T/state" -e "$endpoint" -p "$PROJECT" \
                --log-target=console --log-level=debug --timeout 120 once \
                >"$T/once-$name.out" 2>"$T/once-$name.err" || rc=$?
        nb_assert_eq 0 "$rc" "once ($name): exit status ($(tail -n 3 "$T/once-$name.err"))"
}
created() { nb_emulator_stats | jq -r --arg n "$1" '.creates.by_name[$n].created // 0'; }
no_password() { # FILE...
        local f
        for f in "$@"; do
                ! grep -qaF -- "$PROXY_PASSWORD" "$f" || nb_fail "the proxy password is in $f"
        done
}

printf 'ca_file: %s\nproxy: %s\n' "$PKI/ca.pem" "$PROXY" >"$T/config-proxy.yaml"
printf 'ca_file: %s\n' "$PKI/ca.pem" >"$T/config-env.yaml"
printf 'ca_file: %s\nproxy: %s\nno_proxy: [%s]\n' "$PKI/ca.pem" "$PROXY" "$HOST" >"$T/config-noproxy.yaml"
printf 'proxy: %s\n' "$PROXY" >"$T/config-loopback.yaml"
printf 'proxy: %s\n' "$DEAD" >"$T/config-dead.yaml"

# ---- 1. proxy: in the config ----
nb_step "proxy: in the config: through the proxy, by CONNECT"
run_once px-config "$T/config-proxy.yaml" "$ENDPOINT"
nb_assert_eq 1 "$(created px-config)" "instances created for px-config"
c1=$(connects)
[ "$c1" -ge 1 ] || nb_fail "no CONNECT $HOST:$NGINX_PORT in the proxy's log: $(tail -n 5 "$PROXY_LOG")"
nb_wait_for_line "$ACCESS_LOG" "^127\.0\.0\.1 POST /v1/$PROJECT/demanager/instances 201\$" >/dev/null
no_password "$T/once-px-config.out" "$T/once-px-config.err"
no_password $(find "$T/state" -type f)
nb_assert_eq 0 "$(nb_emulator_stats | jq '.protocol_violations.total')" "protocol violations through the proxy"

nb_step "check -c warns that the password belongs in an EnvironmentFile=, without it"
rc=0
"$NOTEBOOKD" -c "$T/config-proxy.yaml" -m "$M" check >"$T/check.out" 2>"$T/check.err" || rc=$?
nb_assert_eq 0 "$rc" "check -c with a proxy password: exit status"
nb_assert_file_match "$T/check.err" "config-proxy\.yaml:2:8: warning: 'proxy' holds a password: .*EnvironmentFile=" "check's warning"
no_password "$T/check.out" "$T/check.err"

# ---- 2. the environment's https_proxy ----
nb_step "https_proxy in the environment, no proxy: key: through the proxy"
run_once px-env "$T/config-env.yaml" "$ENDPOINT" https_proxy="$PROXY"
nb_assert_eq 1 "$(created px-env)" "instances created for px-env"
c2=$(connects)
[ "$c2" -gt "$c1" ] || nb_fail "https_proxy: no new CONNECT in the proxy's log ($c1 -> $c2)"
no_password "$T/once-px-env.out" "$T/once-px-env.err"

# ---- 3. the key wins ----
nb_step "proxy: wins over https_proxy (a dead one)"
run_once px-wins "$T/config-proxy.yaml" "$ENDPOINT" https_proxy="$DEAD" HTTPS_PROXY="$DEAD"
nb_assert_eq 1 "$(created px-wins)" "instances created for px-wins"
c3=$(connects)
[ "$c3" -gt "$c2" ] || nb_fail "proxy: over https_proxy: no new CONNECT in the proxy's log ($c2 -> $c3)"

# ---- 4. no_proxy ----
nb_step "no_proxy: [$HOST]: direct, the proxy's log unchanged"
r4=$(requests)
run_once px-noproxy "$T/config-noproxy.yaml" "$ENDPOINT"
nb_assert_eq 1 "$(created px-noproxy)" "instances created for px-noproxy"
nb_assert_eq "$r4" "$(requests)" "requests in the proxy's log after no_proxy: [$HOST]"
nb_wait_for_line "$ACCESS_LOG" "^127\.0\.0\.1 POST /v1/$PROJECT/demanager/instances 201\$" "$NB_TIMEOUT" 4 >/dev/null

nb_step "no_proxy=$HOST in the environment beside https_proxy: direct (carried over)"
run_once px-envno "$T/config-env.yaml" "$ENDPOINT" https_proxy="$PROXY" no_proxy="$HOST"
nb_assert_eq 1 "$(created px-envno)" "instances created for px-envno"
nb_assert_eq "$r4" "$(requests)" "requests in the proxy's log after no_proxy=$HOST"

# ---- 5. loopback ----
nb_step "the loopback endpoint with proxy: set: direct, the proxy's log unchanged"
run_once px-loop "$T/config-loopback.yaml" "$NB_EMULATOR_URL"
nb_assert_eq 1 "$(created px-loop)" "instances created for px-loop"
nb_assert_eq "$r4" "$(requests)" "requests in the proxy's log after the loopback endpoint"
no_password "$T/once-px-loop.out" "$T/once-px-loop.err"

nb_step "the loopback endpoint with a dead proxy: still direct"
run_once px-dead "$T/config-dead.yaml" "$NB_EMULATOR_URL" https_proxy="$DEAD" http_proxy="$DEAD"
nb_assert_eq 1 "$(created px-dead)" "instances created for px-dead"

nb_assert_eq 0 "$(nb_emulator_stats | jq '.creates.duplicates')" "duplicate creates"
nb_step "ok"
