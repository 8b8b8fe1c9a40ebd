#!/usr/bin/env bash
# What `make install` delivers: the files in their places, a unit that
# `systemd-analyze verify` accepts (and a check that would notice if it did not), its
# sandbox exposure, the message catalog (one entry per MESSAGE_ID, both ways, compiled
# by journalctl and shown by `journalctl -x` from a real journald), the man page
# (renders without warnings, documents every option, exit code and MESSAGE_ID), and
# the example config (every key, and accepted by the real config loader).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
nb_setup "$@"
cd "$NB_SRCDIR" || exit

make_args=()
case $BUILD in */san) make_args+=(SANITIZE=1) ;; esac

nb_step "make install DESTDIR: the files in their places"
D=$T/dest
make -s --no-print-directory "${make_args[@]}" install DESTDIR="$D" >"$T/install.log" 2>&1 ||
        nb_fail "make install DESTDIR=$D failed: $(tail -n 5 "$T/install.log")"
for f in usr/local/bin/notebookd lib/systemd/system/notebookd.service \
        usr/lib/systemd/catalog/notebookd.catalog usr/local/share/man/man8/notebookd.8 \
        etc/notebookd/notebookd.yaml; do
        [ -f "$D/$f" ] || nb_fail "not installed: /$f"
done
[ -d "$D/etc/notebookd/manifests" ] || nb_fail "not installed: /etc/notebookd/manifests/"
[ -x "$D/usr/local/bin/notebookd" ] || nb_fail "/usr/local/bin/notebookd is not executable"
unit=$D/lib/systemd/system/notebookd.service
nb_assert_file_match "$unit" '^ExecStart=/usr/local/bin/notebookd run$' "installed unit"
nb_assert_file_no_match "$unit" '@[A-Z]+@' "installed unit (unsubstituted placeholder)"
nb_assert_eq 644 "$(stat -c %a "$unit")" "unit mode"
cmp -s units/notebookd.yaml.example "$D/etc/notebookd/notebookd.yaml" || nb_fail "installed config is not the example"
# A second install keeps the operator's config.
echo "project_id: 0123456789abcdef0123456789abcdef" >"$D/etc/notebookd/notebookd.yaml"
make -s --no-print-directory "${make_args[@]}" install DESTDIR="$D" >>"$T/install.log" 2>&1 || nb_fail "second make install failed"
nb_assert_file_match "$D/etc/notebookd/notebookd.yaml" '^project_id: 0123' "config after a second install"

nb_step "the unit: what the service needs"
for want in '^Type=notify$' "^ExecReload=/bin/sh -c 'kill -HUP \"\\\$MAINPID\"'\$" '^WatchdogSec=' '^Restart=on-failure$' \
        '^DynamicUser=yes$' '^StateDirectory=notebookd$' '^ConfigurationDirectory=notebookd$' \
        '^LoadCredential=ak:/etc/notebookd/credentials/ak$' '^LoadCredential=sk:/etc/notebookd/credentials/sk$' \
        '^ProtectSystem=strict$' '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$' '^SystemCallFilter=@system-service$'; do
        nb_assert_file_match "$unit" "$want" "installed unit"
done

nb_step "systemd-analyze verify: silent on the unit, loud on a broken copy"
# verify checks that ExecStart= and the Documentation= man page exist, so install for
# real into $T (BINDIR etc. pointing there) and show man where the page is.
R=$T/real
make -s --no-print-directory "${make_args[@]}" install DESTDIR= BINDIR="$R/bin" UNITDIR="$R/unit" \
        CATALOGDIR="$R/catalog" SYSCONFDIR="$R/etc" MANDIR="$R/man" >>"$T/install.log" 2>&1 ||
        nb_fail "make install into $R failed"
verify() { # UNIT: prints what verify says, returns its status
        MANPATH=$R/man SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$1" 2>&1
}
out=$(verify "$R/unit/notebookd.service") || nb_fail "systemd-analyze verify failed: $out"
nb_assert_eq "" "$out" "systemd-analyze verify output"
# The same check must notice a broken unit (a typo, a bad value, a missing binary).
mkdir -p "$T/broken"
sed -e 's/^WatchdogSec=/WatchdogSecc=/' -e 's/^ProtectHome=.*/ProtectHome=perhaps/' \
        -e "s,^ExecStart=.*,ExecStart=$R/bin/notebookd-missing run," \
        "$R/unit/notebookd.service" >"$T/broken/notebookd.service"
out=$(verify "$T/broken/notebookd.service") || true
nb_assert_match "WatchdogSecc" "$out" "verify on a unit with a typo"
nb_assert_match "protect home" "$out" "verify on a unit with a bad value"
nb_assert_match "notebookd-missing" "$out" "verify on a unit with a missing ExecStart"

nb_step "sandbox: exposure stays at most 1.5 (systemd-analyze security)"
systemd-analyze security --offline=yes --threshold=15 "$R/unit/notebookd.service" >"$T/security.txt" 2>&1 ||
        nb_fail "exposure above 1.5: $(grep -i 'overall exposure' "$T/security.txt")"

nb_step "the template notebookd@.service: an instance's own files, the same unit otherwise"
tpl=$D/lib/systemd/system/notebookd@.service
[ -f "$tpl" ] || nb_fail "not installed: /lib/systemd/system/notebookd@.service"
nb_assert_eq 644 "$(stat -c %a "$tpl")" "template unit mode"
nb_assert_file_no_match "$tpl" '@[A-Z]+@' "installed template (unsubstituted placeholder)"
for want in '^ExecStart=/usr/local/bin/notebookd --config /etc/notebookd/%i\.yaml run$' \
        '^StateDirectory=notebookd@%i$' '^LogExtraFields=NOTEBOOKD_INSTANCE=%i$' \
        '^LoadCredential=ak:/etc/notebookd/credentials/%i/ak$' '^LoadCredential=sk:/etc/notebookd/credentials/%i/sk$'; do
        nb_assert_file_match "$tpl" "$want" "installed template"
done
# Apart from those lines, the template is notebookd.service, directive for directive
# and in order: every sandboxing line is kept (the expected text is derived here, not
# by the generator under test).
grep -v '^#' "$unit" | sed -e 's/^\(Description=.*\)$/\1 (%i)/' \
        -e 's,^\(ExecStart=[^ ]*/notebookd\) ,\1 --config /etc/notebookd/%i.yaml ,' \
        -e 's,^StateDirectory=notebookd$,&@%i\nLogExtraFields=NOTEBOOKD_INSTANCE=%i,' \
        -e 's,^\(LoadCredential=[a-z-]*:/etc/notebookd/credentials/\),\1%i/,' >"$T/template.want"
grep -v '^#' "$tpl" >"$T/template.got"
diff -u "$T/template.want" "$T/template.got" >"$T/template.diff" ||
        nb_fail "the template's directives are not notebookd.service's with the instance's files: $(cat "$T/template.diff")"
[ "$(grep -c '^[A-Z]' "$T/template.got")" -ge 50 ] || nb_fail "too few directives in the template: $T/template.got"
# systemd-analyze verify on an instance loads the template from the same directory.
out=$(verify "$R/unit/notebookd@cn-north-4-research.service") || nb_fail "systemd-analyze verify (instance) failed: $out"
nb_assert_eq "" "$out" "systemd-analyze verify output (instance)"
sed -e 's/^WatchdogSec=/WatchdogSecc=/' -e "s,^ExecStart=[^ ]*,ExecStart=$R/bin/notebookd-missing," \
        "$R/unit/notebookd@.service" >"$T/broken/notebookd@.service"
out=$(verify "$T/broken/notebookd@cn-north-4-research.service") || true
nb_assert_match "WatchdogSecc" "$out" "verify on a template with a typo"
nb_assert_match "notebookd-missing" "$out" "verify on a template with a missing ExecStart"
systemd-analyze security --offline=yes --threshold=15 "$R/unit/notebookd@cn-north-4-research.service" \
        >"$T/security-instance.txt" 2>&1 ||
        nb_fail "instance exposure above 1.5: $(grep -i 'overall exposure' "$T/security-instance.txt")"
# The generator refuses a source it can no longer rewrite (the instances would share
# one state directory): the build fails instead.
sed '/^StateDirectory=/d' units/notebookd.service >"$T/no-statedir.service"
if out=$(sh mk/template-unit.sh "$T/no-statedir.service" 2>&1 >/dev/null); then
        nb_fail "mk/template-unit.sh accepted a unit without StateDirectory="
fi
nb_assert_match 'no StateDirectory= line to rewrite' "$out" "mk/template-unit.sh on a unit without StateDirectory="

nb_step "catalog: one entry per MESSAGE_ID in daemon/messages.h, and no other"
nb_message_ids >"$T/ids.h.txt"
[ "$(wc -l <"$T/ids.h.txt")" -ge 18 ] || nb_fail "too few MESSAGE_IDs parsed from daemon/messages.h"
cut -d' ' -f2 "$T/ids.h.txt" | sort >"$T/ids.h"
sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' units/notebookd.catalog | sort >"$T/ids.catalog"
[ -z "$(sort "$T/ids.h" | uniq -d)" ] || nb_fail "duplicate MESSAGE_ID in messages.h: $(uniq -d "$T/ids.h")"
[ -z "$(uniq -d "$T/ids.catalog")" ] || nb_fail "duplicate catalog entry: $(uniq -d "$T/ids.catalog")"
missing=$(comm -23 "$T/ids.h" "$T/ids.catalog")
[ -z "$missing" ] || nb_fail "MESSAGE_IDs without a catalog entry: $(grep -F "$missing" "$T/ids.h.txt" | cut -d' ' -f1 | tr '\n' ' ')"
extra=$(comm -13 "$T/ids.h" "$T/ids.catalog")
[ -z "$extra" ] || nb_fail "catalog entries for no MESSAGE_ID in messages.h: $extra"
# Every "--" line is an entry header with a valid ID (a typo would make a new entry).
nb_assert_file_no_match units/notebookd.catalog '^--( |$)([^0-9a-f]|.{0,31}$|.{33,})' "catalog (malformed entry header)"

nb_step "catalog: journalctl compiles it, and lists every entry with its subject"
out=$(journalctl --root="$D" --update-catalog 2>&1) || nb_fail "journalctl --update-catalog failed: $out"
nb_assert_eq "" "$out" "journalctl --update-catalog output"
journalctl --root="$D" --list-catalog >"$T/list-catalog" 2>&1 || nb_fail "journalctl --list-catalog failed"
nb_assert_eq "$(cat "$T/ids.h")" "$(cut -d' ' -f1 "$T/list-catalog" | sort)" "IDs in the compiled catalog"
nb_assert_file_no_match "$T/list-catalog" '^[0-9a-f]{32} notebookd: *$' "catalog (entry without a subject)"
n_entries=$(wc -l <"$T/ids.h")
nb_assert_eq "$n_entries" "$(grep -c '^Defined-By: notebookd$' units/notebookd.catalog)" "entries with Defined-By: notebookd"
nb_assert_eq "$n_entries" "$(grep -c '^Documentation: man:notebookd(8)' units/notebookd.catalog)" "entries with Documentation:"

nb_step "catalog: journalctl -x explains notebookd's entries from a real journald"
PROBE=$BUILD/log-probe
[ -x "$PROBE" ] || nb_fail "$PROBE missing: run make"
nb_start_journald
# journalctl -x reads /var/lib/systemd/catalog/database: give it ours, in this
# namespace only.
db=$D/var/lib/systemd/catalog/database
[ -f "$db" ] || nb_fail "no compiled catalog at $db"
if [ -d /var/lib/systemd/catalog ]; then
        mount -t tmpfs -o mode=0755 nb-catalog /var/lib/systemd/catalog
elif [ -d /var/lib/systemd ]; then
        mount -t tmpfs -o mode=0755 nb-catalog /var/lib/systemd
        mkdir -p /var/lib/systemd/catalog
else
        nb_fail "no /var/lib/systemd to hold the catalog database (is systemd installed?)"
fi
cp "$db" /var/lib/systemd/catalog/database
while read -r name id; do
        "$PROBE" journal 6 6 "$id" "probe $name" NOTEBOOK=train-01 INSTANCE_ID=i-42 STATUS=RUNNING \
                HTTP_STATUS=400 API_ERROR_CODE=ModelArts.6302 CONFIG_FILE=/m/a.yaml CONFIG_LINE=3 \
                CONFIG_COLUMN=7 >/dev/null
done <"$T/ids.h.txt"
nb_wait_for_journal "probe $(tail -n 1 "$T/ids.h.txt" | cut -d' ' -f1)" >/dev/null
journalctl --sync
journalctl --directory="$NB_JOURNAL_DIR" --no-pager -x SYSLOG_IDENTIFIER=notebookd >"$T/explained.txt"
nb_assert_eq "$n_entries" "$(grep -c 'Defined-By: notebookd' "$T/explained.txt")" "entries explained by journalctl -x"
nb_assert_file_match "$T/explained.txt" 'Subject: Creating notebook instance train-01 failed$' "journalctl -x (fields substituted)"
nb_assert_file_match "$T/explained.txt" 'Subject: Invalid manifest: /m/a.yaml$' "journalctl -x"
nb_assert_file_match "$T/explained.txt" 'invalid, at line 3,$' "journalctl -x"
# Every @FIELD@ the catalog uses was given above: none may be left unreplaced.
nb_assert_file_no_match "$T/explained.txt" '@[A-Z_]+@' "journalctl -x (unreplaced field)"

nb_step "man page: renders without warnings, and documents what the program has"
page=units/notebookd.8
if command -v groff >/dev/null; then
        out=$(groff -man -ww -z "$page" 2>&1)
        nb_assert_eq "" "$out" "groff -man -ww warnings"
else
        echo "note: groff missing; rendering not checked" >&2
fi
if command -v man >/dev/null; then
        out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >"$T/man.txt")
        nb_assert_eq "" "$out" "man --warnings"
else
        # Without man-db, check the source text instead of the rendering.
        sed 's/\\-/-/g' "$page" >"$T/man.txt"
fi
# man renders hyphenation points as U+2010 and may break words: check the roff source
# (with \- as -) for names, the rendering for the section headings.
sed 's/\\-/-/g; s/\\f[BIRP]//g' "$page" >"$T/man.src"
for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS CONFIGURATION CREDENTIALS MANIFESTS \
        'EXIT STATUS' JOURNAL SIGNALS FILES 'SEE ALSO'; do
        grep -q "^$section\$" "$T/man.txt" || nb_fail "man page: no $section section"
done
"$NOTEBOOKD" --help >"$T/help.txt" || nb_fail "notebookd --help failed"
for opt in $(grep -oE -- '--[a-z][a-z-]+' "$T/help.txt" | sort -u); do
        grep -qF -- "$opt" "$T/man.src" || nb_fail "man page does not document $opt (from --help)"
done
for verb in run once check plan status; do
        grep -q "^\.B $verb\$\|^\.BR $verb " "$T/man.src" || nb_fail "man page: no entry for the command $verb"
done
for code in $(sed -n 's/^ *EXIT_[A-Z]* = \([0-9]*\),.*/\1/p' daemon/cli.h); do
        grep -q "^\.B $code\$" "$T/man.src" || nb_fail "man page: exit status $code (daemon/cli.h) not documented"
done
while read -r name id; do
        grep -q "$id" "$T/man.src" || nb_fail "man page: $name ($id) not listed under JOURNAL"
done <"$T/ids.h.txt"

nb_step "example config: every key, and the real loader accepts it"
ex=units/notebookd.yaml.example
keys=$(sed -n '/^typedef struct Config {/,/^} Config;/p' lib/config.h |
        sed -n 's/^ *[A-Za-z0-9_]* \**\([a-z_]*\);.*/\1/p' | sed 's/_ms$//' | grep -vx file)
[ "$(echo "$keys" | wc -l)" -ge 10 ] || nb_fail "too few Config fields parsed from lib/config.h"
for k in $keys; do
        grep -qE "^#?$k:" "$ex" || nb_fail "$ex lacks the key '$k' (lib/config.h)"
done
mkdir -p "$T/no-manifests"
out=$("$NOTEBOOKD" -c "$ex" check "$T/no-manifests" 2>&1) || nb_fail "the example config as installed is refused: $out"
# Uncommented, every example value must be valid too.
sed -E 's/^#([a-z_]+:|  - )/\1/' "$ex" >"$T/all-keys.yaml"
nb_assert_eq "$(echo "$keys" | wc -l)" "$(grep -cE '^[a-z_]+:' "$T/all-keys.yaml")" "keys in the uncommented example"
out=$("$NOTEBOOKD" -c "$T/all-keys.yaml" check "$T/no-manifests" 2>&1) || nb_fail "the uncommented example config is refused: $out"
nb_assert_file_no_match <(echo "$out") ': (error|warning): ' "loading the uncommented example"
# ...and the loader is really reading it: a typo is refused.
sed 's/^concurrency:/concurency:/' "$T/all-keys.yaml" >"$T/typo.yaml"
if out=$("$NOTEBOOKD" -c "$T/typo.yaml" check "$T/no-manifests" 2>&1); then
        nb_fail "a config with a typo was accepted"
fi
nb_assert_match 'typo\.yaml:[0-9]+:[0-9]+: error: unknown key' "$out" "diagnostic for the typo"

echo PASS
