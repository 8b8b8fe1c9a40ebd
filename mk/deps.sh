#!/bin/sh
# Install what notebookd needs to build and test, from Debian's archive.
# Run as root it installs with apt-get; otherwise it says what to run.
set -eu
# package:probe  (probe = pkg-config module, or cmd:NAME for a program)
# nginx and openssl: tests/integration/t-tls.sh (TLS through a real server, a throwaway CA).
# Debian starts and enables nginx.service on install where systemd runs; the test never
# uses it (it runs its own nginx from its temporary directory).
# tinyproxy-bin: tests/integration/t-proxy.sh (a real forward proxy, CONNECT to nginx); the
# binary alone, without Debian's tinyproxy.service: the test runs its own from its temporary
# directory with its own config, so nothing on the host is started or collides with it.
NEEDS="
pkg-config:cmd:pkg-config
gcc:cmd:gcc
make:cmd:make
libyaml-dev:yaml-0.1
libcjson-dev:libcjson
libcurl4-openssl-dev:libcurl
libsystemd-dev:libsystemd
libsqlite3-dev:sqlite3
libssl-dev:libcrypto
libcmocka-dev:cmocka
libmicrohttpd-dev:libmicrohttpd
systemd:cmd:/lib/systemd/systemd-journald
jq:cmd:jq
sqlite3:cmd:sqlite3
curl:cmd:curl
openssl:cmd:openssl
nginx:cmd:/usr/sbin/nginx
man-db:cmd:man
faketime:cmd:faketime
tinyproxy-bin:cmd:/usr/bin/tinyproxy
prometheus:cmd:promtool
"
# The tests' other tools are in every Debian system, minbase included: bash,
# coreutils, diffutils, grep, sed, mawk, perl-base, util-linux (unshare, setpriv,
# flock), mount, bsdutils (logger). man-db: t-unit renders the page and
# `systemd-analyze verify` checks the unit's Documentation=man:notebookd(8) with it.
# openssl: t-emulator signs a request by hand.
# faketime (and its dependency libfaketime): t-fault-clock.sh skews the daemon's clock.
# prometheus (for promtool only; the server is not used): t-metrics.sh checks the metrics
# file with `promtool check metrics` and the README's alert rules with `promtool check rules`.
# Debian starts prometheus.service on install where systemd runs; the test never uses it.

# DEB=1 (make deb, make deps DEB=1): the Debian packaging tools, only when asked: the
# package build (dpkg-buildpackage, dh), lintian on the .deb, and dch (devscripts), with
# which tests/system/run.sh bumps the version to build the package it upgrades to.
if [ "${DEB:-0}" = 1 ]; then
    NEEDS="$NEEDS
dpkg-dev:cmd:dpkg-buildpackage
debhelper:cmd:dh
devscripts:cmd:dch
lintian:cmd:lintian
"
fi
missing=""
for entry in $NEEDS; do
    pkg=${entry%%:*}
    probe=${entry#*:}
    case $probe in
    cmd:/*) [ -x "${probe#cmd:}" ] && continue ;;
    cmd:*) command -v "${probe#cmd:}" >/dev/null 2>&1 && continue ;;
    *) command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$probe" && continue ;;
    esac
    missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
echo "deps: missing:$missing"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "deps: run as root: apt-get install$missing" >&2
    exit 1
fi
