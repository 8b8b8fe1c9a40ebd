#!/usr/bin/env bash
# `notebookd run` while a hostile 200 MiB tree lands in its manifests directory:
#   - 200 files of just under 1 MiB (the per-file limit), each a kind the parser is
#     slowest or most memory-hungry on: documents of flow lists (node count), a
#     duplicate key per line (errors), 1,000 annotations per document, 1,000 keys of
#     900 bytes per mapping, deep nesting;
#   - among them, good manifests: small files, one in a file padded to 1 MiB with
#     comments, one as the first document of a file whose other documents are hostile.
# Asserts:
#   - WATCHDOG=1 keeps coming: no gap between two (in the notify log) reaches the
#     WATCHDOG_USEC the daemon was given, which is when systemd would kill it;
#   - the longest loop iteration the daemon measured (LOOP_MAX_USEC, logged at exit) is
#     under half of it;
#   - peak RSS (VmHWM) stays under units/notebookd.service's MemoryMax= (not under ASan);
#   - the good manifests before the 64 MiB-per-scan cut converge, and so does one added
#     while the scan runs (a queued rescan), and the one after the cut is not sent; the cut is one diagnostic naming its first
#     file, and each hostile kind gets its own limit's diagnostic;
#   - SIGTERM during a scan of the tree: the daemon exits 0 promptly (the scan thread
#     gives up between files).
# Prints the figures (longest iteration, peak RSS, longest WATCHDOG=1 gap) for the report.
# A scan of the tree takes seconds (half a minute under ASan on a loaded machine): the
# waits below allow for a few of them (NB_TIMEOUT only turns a hang into a failure).
NB_TIMEOUT=${NB_TIMEOUT:-180}
. "$(dirname "$0")/lib.sh"
nb_setup "$@"

AK=HOSTILETREEAK0000001
SK=hostileTreeSecretKey0123456789abcdefgHI
PROJECT=3c3c3d3d3e3e3f3f4040414142424343
WATCHDOG_USEC=2000000
N_FILES=200
eval "$(nb_message_ids | sed 's/^\([A-Z_]*\) \([0-9a-f]*\)$/\1=\2/')"

nb_start_journald
nb_start_emulator --ak "$AK" --sk "$SK" --project-id "$PROJECT" --create-delay-ms 100
nb_start_notify

M=$T/manifests
S=$T/state
djournal() { nb_journal_json _PID="$DAEMON_PID" "$@"; }

mkdir -p "$M"
nb_write_creds "$AK" "$SK"
nb_write_config "$PROJECT" "$M" "$S" "resync_interval: 10m"
nb_write_manifest "$M/before-01.yaml" before-01

# ---- the hostile tree, written outside the manifests directory ----
nb_step "writing the hostile tree ($N_FILES files of just under 1 MiB)"
H=$T/hostile
mkdir -p "$H"
# perl-base is essential in Debian: no python needed.
perl - "$H" "$N_FILES" <<'EOF' || nb_fail "cannot write the hostile tree"
use strict;
use warnings;
my ($out, $n) = @ARGV;
my $LIM = 1024 * 1024 - 64;
my $GOOD = "name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec:\n  storage:\n    type: evs\n";

# head, then unit repeated up to just under the per-file limit
sub fill {
        my ($head, $unit) = @_;
        my $k = int(($LIM - length($head)) / length($unit));
        $k = 0 if $k < 0;
        return $head . ($unit x $k);
}

sub put {
        my ($name, $text) = @_;
        open(my $f, '>', "$out/$name") or die "$out/$name: $!";
        print $f $text;
        close($f) or die "$out/$name: $!";
}

for my $i (0 .. $n - 1) {
        # h-000: a good first document, hostile ones after it
        my $head = $i == 0 ? sprintf($GOOD, "hostile-first-doc") . "---\n" : "";
        my $k = $i % 5;
        my $text;
        if ($k == 0) {          # flow lists: the most nodes per byte
                my $list = "[" . join(",", ("1") x 1000) . "]";
                $text = fill($head, "[" . join(",", ($list) x 30) . "]\n---\n");
        } elsif ($k == 1) {     # a duplicate key per line: an error each
                $text = fill($head . "name: dup-$i\n", "a: 1\n");
        } elsif ($k == 2) {     # 1,000 annotations per document
                my $doc = sprintf($GOOD, "ann-$i");
                my $ann = "  annotations:\n" . join("", map { "    k$_: v$_\n" } 0 .. 999);
                $doc =~ s/  storage:/$ann  storage:/;
                $text = fill($head, $doc . "---\n");
        } elsif ($k == 3) {     # 1,000 keys of 900 bytes per mapping
                $text = fill($head, join("", map { ("k" x 900) . "$_: 1\n" } 0 .. 999) . "---\n");
        } else {                # nesting deeper than the limit
                $text = fill($head, "a:\n" . join("", map { ("  " x $_) . "b$_:\n" } 1 .. 11) . "---\n");
        }
        put(sprintf("h-%03d.yaml", $i), $text);
}
# good manifests: small, before the cut in walk order
put(sprintf("a-good-%02d.yaml", $_), sprintf($GOOD, sprintf("hostile-good-%02d", $_))) for 1 .. 3;
# one padded to the per-file limit with comments: valid, read, counted in the total
put("b-padded.yaml", fill(sprintf($GOOD, "hostile-padded"), "# " . ("x" x 61) . "\n"));
# a good one past the cut: not read
put("z-after-cut.yaml", sprintf($GOOD, "hostile-after-cut"));
EOF
nb_step "hostile tree: $(du -sm "$H" | cut -f1) MiB"

# ---- the daemon ----
nb_spawn daemon env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK -u HUAWEICLOUD_SDK_SECURITY_TOKEN \
        -u HUAWEICLOUD_SDK_PROJECT_ID -u WATCHDOG_PID CREDENTIALS_DIRECTORY="$T/creds" WATCHDOG_USEC=$WATCHDOG_USEC \
        "$NOTEBOOKD" -c "$T/config.yaml" --log-target=journal --log-level=debug run
DAEMON_PID=$NB_PID
nb_wait_for_line "$NB_NOTIFY_LOG" 'READY=1' "$NB_TIMEOUT" 1 "$DAEMON_PID" >/dev/null
nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" NOTEBOOK=before-01 _PID="$DAEMON_PID" >/dev/null

# One rename: the watcher sees a new directory, one scan reads it.
nb_step "moving the hostile tree in"
mv "$H" "$M/hostile"
# While that scan runs: one more change, which must be picked up by a queued scan. It
# sorts before hostile/: files past the cut in walk order are not read.
nb_wait_for_journal '"MESSAGE":"Scanning the manifests \(files changed\)' 1 _PID="$DAEMON_PID" >/dev/null
nb_write_manifest "$M/a-late-01.yaml" late-01

for name in late-01 hostile-first-doc hostile-good-01 hostile-good-02 hostile-good-03 hostile-padded; do
        nb_wait_for_journal . 1 MESSAGE_ID="$MESSAGE_CREATE_ACCEPTED" NOTEBOOK="$name" _PID="$DAEMON_PID" >/dev/null
done

# ---- the diagnostics: one per limit, the cut named once ----
# logged a slice per loop iteration, in file order: the cut (h-0NN) comes after h-000..4
nb_wait_for_journal 'manifests total more than' 1 MESSAGE_ID="$MESSAGE_MANIFEST_INVALID" _PID="$DAEMON_PID" >/dev/null
djournal MESSAGE_ID="$MESSAGE_MANIFEST_INVALID" | jq -r '.MESSAGE' >"$T/diags.txt"
cut_file=$(grep -c 'manifests total more than 67108864 bytes (limit per scan); this file and the [0-9]* after it are not read' "$T/diags.txt" || true)
nb_assert_eq 1 "$cut_file" "diagnostics for the 64 MiB cut ($(grep -m3 'total more' "$T/diags.txt"))"
nb_assert_file_match "$T/diags.txt" '/hostile/h-[0-9]{3}\.yaml(:0:0)?: error: manifests total more than' "the cut names its first file"
nb_assert_file_match "$T/diags.txt" '/hostile/h-000\.yaml:[0-9]+:[0-9]+: error: document too large: more than 4096 YAML nodes \(limit\)' "node limit"
nb_assert_file_match "$T/diags.txt" '/hostile/h-001\.yaml:[0-9]+:[0-9]+: error: too many errors \(limit 100\); the rest of the file is not checked' "error limit"
nb_assert_file_match "$T/diags.txt" '/hostile/h-002\.yaml:[0-9]+:[0-9]+: error: too many annotations: 1000 \(limit 64\)' "annotation limit"
nb_assert_file_match "$T/diags.txt" '/hostile/h-004\.yaml:[0-9]+:[0-9]+: error: nesting too deep' "depth limit"
n_h001=$(grep -c '/hostile/h-001\.yaml:' "$T/diags.txt" || true)
nb_assert_eq 101 "$n_h001" "diagnostics for the duplicate-key file (100 and the limit's)"

# ---- SIGTERM in the middle of a scan of the whole tree ----
nb_step "SIGTERM during a scan"
hwm_kib=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$DAEMON_PID/status")
[ -n "$hwm_kib" ] || nb_fail "cannot read VmHWM of $DAEMON_PID"
n_started=$(djournal | jq -r '.MESSAGE' | grep -c '^Scanning the manifests' || true)
touch "$M/hostile/h-"*.yaml # every file changed: all parsed again, for seconds
nb_wait_for_journal '"MESSAGE":"Scanning the manifests' "$((n_started + 1))" _PID="$DAEMON_PID" >/dev/null
nb_stop "$DAEMON_PID" TERM
nb_assert_eq 0 "$NB_STATUS" "daemon exit status after SIGTERM during a scan"
nb_assert_file_no_match "$T/daemon.log" 'Sanitizer|runtime error' "daemon output (sanitizers)"

# ---- the loop: WATCHDOG=1 kept coming, no long iteration ----
max_gap_usec=$(awk -v start=0 '/WATCHDOG=1/ { if (last) { g = $1 - last; if (g > max) max = g } last = $1 } END { print max + 0 }' "$NB_NOTIFY_LOG")
n_pings=$(grep -c 'WATCHDOG=1' "$NB_NOTIFY_LOG" || true)
[ "$n_pings" -ge 2 ] || nb_fail "only $n_pings WATCHDOG=1 notifications"
[ "$max_gap_usec" -lt "$WATCHDOG_USEC" ] ||
        nb_fail "WATCHDOG=1 gap of $max_gap_usec us reached WATCHDOG_USEC=$WATCHDOG_USEC: systemd would have killed the daemon"
loop_max_usec=$(djournal | jq -r 'select(.LOOP_MAX_USEC != null) | .LOOP_MAX_USEC' | tail -n 1)
loop_max_cpu_usec=$(djournal | jq -r 'select(.LOOP_MAX_CPU_USEC != null) | .LOOP_MAX_CPU_USEC' | tail -n 1)
[ -n "$loop_max_usec" ] || nb_fail "no LOOP_MAX_USEC entry at exit"
mem_max=$(sed -n 's/^MemoryMax=\([0-9]*\)M$/\1/p' "$NB_SRCDIR/units/notebookd.service")
[ -n "$mem_max" ] || nb_fail "cannot read MemoryMax=<N>M from units/notebookd.service"
nb_step "figures: longest loop iteration $((loop_max_usec / 1000)) ms ($((loop_max_cpu_usec / 1000)) ms of CPU), peak RSS (VmHWM) $((hwm_kib / 1024)) MiB," \
        "longest WATCHDOG=1 gap $((max_gap_usec / 1000)) ms ($n_pings pings, WATCHDOG_USEC=$WATCHDOG_USEC), MemoryMax=${mem_max}M"
[ "$loop_max_usec" -lt $((WATCHDOG_USEC / 2)) ] ||
        nb_fail "a loop iteration took $loop_max_usec us, more than half of WATCHDOG_USEC=$WATCHDOG_USEC"
# MemoryMax= sizes the production build: under ASan the quarantine alone (256 MiB by
# default) and the shadow memory are on top, so there the figure is only reported.
if ldd "$NOTEBOOKD" | grep libasan >/dev/null; then
        nb_step "ASan build: peak RSS not compared with MemoryMax="
else
        [ "$hwm_kib" -lt $((mem_max * 1024)) ] || nb_fail "peak RSS $hwm_kib KiB reached MemoryMax=${mem_max}M"
fi

# the file past the cut was never sent
stats=$(nb_emulator_stats)
nb_assert_eq null "$(jq -r '.creates.by_name["hostile-after-cut"]' <<<"$stats")" "the manifest past the cut was not created"
nb_step "ok"
