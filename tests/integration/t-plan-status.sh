#!/usr/bin/env bash
# plan and status against a real state database, written the way another process (the
# daemon) would: with the sqlite3 CLI, in the on-disk format of schema version 2. That
# pins the format too: a file written by this schema must stay readable.
set -euo pipefail
BUILD=${BUILD:-build}
NB=$(realpath "$BUILD/notebookd")
tmp=$(mktemp -d)
writer_pid=
cleanup() {
        # Only the script's own shell: a subshell signalled before it reset the traps
        # would otherwise remove $tmp under the test.
        [ "$BASHPID" = "$$" ] || return 0
        [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"

fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() { # want, command...
        local want=$1; shift
        local rc=0
        "$@" >out 2>err || rc=$?
        [ "$rc" -eq "$want" ] || { cat out err >&2; fail "$* exited $rc, want $want"; }
}
has() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks: $2"; }; }
hasnt() { ! grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 has: $2"; }; }
line_re() { grep -qE -- "$2" "$1" || { cat "$1" >&2; fail "$1 has no line matching: $2"; }; }

: > config.yaml
nb() { "$NB" -c config.yaml -m manifests -s state "$@"; }

mkdir manifests
for i in 01 02 03 04 05 06 07; do
        cat > manifests/train-$i.yaml <<EOF
name: train-$i
profile_id: Python3
flavor: modelarts.vm.cpu.2u
spec:
  storage:
    type: evs
    location:
      volume_size: 10
EOF
done

# ---- nothing recorded yet: no state dir at all is not an error, and stays absent ----
expect_rc 0 nb status
has out "0 instances recorded"
expect_rc 0 nb status --json
[ "$(jq '.instances | length' out)" = 0 ] || fail "status --json: instances not empty"
expect_rc 0 nb plan
line_re out '^create +train-01 +not created yet$'
has out "7 desired: 7 create"
[ ! -e state ] || fail "plan/status created the state directory"
expect_rc 0 nb plan --json
[ "$(jq -r '.counts.create' out)" = 7 ] || fail "plan --json: create count"
[ "$(jq -r '.offline' out)" = true ] || fail "plan --json: offline"
hash() { jq -r --arg n "$1" '.actions[] | select(.name == $n) | .spec_hash' out; }
h01=$(hash train-01) h03=$(hash train-03) h04=$(hash train-04) h07=$(hash train-07)
[ ${#h01} = 64 ] || fail "spec_hash '$h01'"

# ---- seed the store ----
mkdir -m 0700 state
db=state/notebookd.db
now=$(date +%s%3N)
day=$((24 * 3600 * 1000))
sqlite3 "$db" >/dev/null <<EOF
PRAGMA journal_mode = WAL;
PRAGMA application_id = 1851943780;
CREATE TABLE instances (
  name TEXT PRIMARY KEY NOT NULL, instance_id TEXT, spec_hash TEXT, status TEXT, result TEXT,
  http_status INTEGER NOT NULL DEFAULT 0, error_code TEXT, error_msg TEXT, request_id TEXT,
  result_at_ms INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms INTEGER NOT NULL DEFAULT 0, created_at_ms INTEGER NOT NULL DEFAULT 0,
  updated_at_ms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE create_intents (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
  spec_hash TEXT, created_at_ms INTEGER NOT NULL, resolved_at_ms INTEGER, outcome TEXT);
CREATE INDEX create_intents_open ON create_intents(name) WHERE resolved_at_ms IS NULL;
PRAGMA user_version = 2;
INSERT INTO instances (name, instance_id, spec_hash, status, result, http_status, created_at_ms, updated_at_ms)
  VALUES ('train-01', 'id-0001', '$h01', 'RUNNING', 'accepted', 201, $now - 2 * $day, $now);
INSERT INTO instances (name, instance_id, spec_hash, status, result, created_at_ms)
  VALUES ('train-02', 'id-0002', 'an-older-manifest', 'CREATING', 'accepted', $now - 3 * 3600 * 1000);
INSERT INTO instances (name, spec_hash, result, http_status, error_code, error_msg, attempts, created_at_ms)
  VALUES ('train-03', '$h03', 'rejected', 400, 'ModelArts.6404', 'flavor not allowed', 1, $now - 300 * 1000);
INSERT INTO instances (name, spec_hash, result, http_status, attempts, next_attempt_at_ms, created_at_ms)
  VALUES ('train-04', '$h04', 'retrying', 503, 2, $now + $day, $now - 60 * 1000);
INSERT INTO instances (name, instance_id, spec_hash, status, result, created_at_ms)
  VALUES ('train-07', 'id-0007', '$h07', 'CREATE_FAILED', 'accepted', $now - 5 * $day);
INSERT INTO instances (name, instance_id, status, result, created_at_ms)
  VALUES ('old-one', 'id-0099', 'RUNNING', 'adopted', $now - 10 * $day);
INSERT INTO instances (name, instance_id, status, result, error_msg, created_at_ms)
  VALUES (char(27) || '[31mevil' || char(10) || 'forged line', 'id-' || char(7), char(27) || ']0;title',
          'gone', char(155) || '2J', $now);
INSERT INTO create_intents (name, spec_hash, created_at_ms) VALUES ('train-05', 'h', $now - 42 * 1000);
INSERT INTO create_intents (name, spec_hash, created_at_ms, resolved_at_ms, outcome)
  VALUES ('train-06', 'h', $now - 1000, $now, 'accepted');
EOF

# ---- plan: one line per action, offline ----
expect_rc 0 nb plan
line_re out '^ACTION +NAME +DETAIL$'
line_re out '^ok +train-01 +id-0001 RUNNING$'
line_re out '^drift +train-02 +id-0002 CREATING differs: manifest changed since it was created \(needs re-creation\)$'
line_re out '^blocked +train-03 +rejected: HTTP 400 ModelArts.6404: flavor not allowed \(change the manifest to retry\)$'
line_re out '^retry-later +train-04 +next try in (23h|1d) \(attempt 3\) after a transient failure: HTTP 503$'
line_re out '^wait +train-05 +create intent #1 \([0-9]+[sm] ago\) has an unknown outcome: list before retrying$'
line_re out '^create +train-06 +not created yet$'
line_re out '^failed +train-07 +id-0007 CREATE_FAILED$'
line_re out '^gone +old-one +not in any valid manifest: id-0099 RUNNING \(kept, not deleted\)$'
has out "7 desired: 1 create, 1 wait, 1 blocked, 1 retry-later, 1 drift, 1 failed, 1 ok, 2 gone"
# The hostile name is escaped, never raw control characters.
has out '\x1b[31mevil\x0aforged line'
! grep -q $'\x1b' out || fail "plan printed a raw ESC"
! grep -q '^forged line' out || fail "plan let a name forge a line"
[ -s err ] && { cat err >&2; fail "plan wrote to stderr with valid manifests"; }

expect_rc 0 nb plan --json
jq -e '.offline == true and .recorded == 7 and .open_intents == 1' out >/dev/null || fail "plan --json header"
jq -e '.counts == {"create":1,"adopt":0,"wait":1,"blocked":1,"retry-later":1,"drift":1,"failed":1,"pending":0,"ok":1,"gone":2,"start":0,"stop":0,"delete":0}' \
        out >/dev/null || fail "plan --json counts: $(jq -c .counts out)"
jq -e '.actions[] | select(.name == "train-02") | .kind == "drift" and .drift == ["spec"] and .instance_id == "id-0002"' \
        out >/dev/null || fail "plan --json drift action"
jq -e '.actions[] | select(.name == "train-05") | .kind == "wait" and .intent_id == 1 and .reason == "intent-open"' \
        out >/dev/null || fail "plan --json wait action"
jq -e '.actions[] | select(.name == "train-03") | .error_code == "ModelArts.6404" and .file == "manifests/train-03.yaml"' \
        out >/dev/null || fail "plan --json blocked action"
[ "$(jq -r '.actions[0].name' out)" = $'\x1b[31mevil\nforged line' ] || fail "plan --json name not preserved"

# A changed manifest unblocks the rejected one; the changed one now differs from the record.
sed -i 's/cpu.2u/cpu.8u/' manifests/train-03.yaml
expect_rc 0 nb plan
line_re out '^create +train-03 +manifest changed since it was rejected \(HTTP 400 ModelArts.6404: flavor not allowed\): try again$'

# An invalid manifest: diagnostics on stderr, the rest still planned, exit 1.
printf 'name: broken\nflavour: x\n' > manifests/broken.yaml
expect_rc 1 nb plan
has err "manifests/broken.yaml:2:1: error: unknown key 'flavour'"
has out "7 desired, 1 invalid manifest (not applied): 2 create"
rm manifests/broken.yaml
expect_rc 2 "$NB" -c config.yaml -m no-such-dir -s state plan
has err "no-such-dir"

# ---- status ----
expect_rc 0 nb status
line_re out '^NAME +INSTANCE-ID +STATUS +RESULT +AGE$'
line_re out '^train-01 +id-0001 +RUNNING +accepted +2d$'
line_re out '^train-02 +id-0002 +CREATING +accepted +3h$'
line_re out '^train-03 +- +- +rejected \(ModelArts.6404\) +5m$'
line_re out '^train-04 +- +- +retrying +1m$'
line_re out '^train-07 +id-0007 +CREATE_FAILED +accepted +5d$'
line_re out '^old-one +id-0099 +RUNNING +adopted +10d$'
line_re out '^unresolved create: train-05 \(intent #1, [0-9]+[sm] ago\)'
has out "7 instances recorded: 2 running, 1 pending, 1 failed, 1 status unknown, 2 not created; 1 unresolved create"
! grep -q $'\x1b\|\x07' out || fail "status printed a raw control character"
has out '\x1b]0;title'
has out 'id-\x07'

expect_rc 0 nb status --json
jq -e '.instances | length == 7' out >/dev/null || fail "status --json count"
jq -e '.instances | map(.name) | .[1:] == ["old-one","train-01","train-02","train-03","train-04","train-07"]' \
        out >/dev/null || fail "status --json order: $(jq -c '[.instances[].name]' out)"
jq -e '.instances[] | select(.name == "train-03") | .error_code == "ModelArts.6404" and .http_status == 400 and .instance_id == null' \
        out >/dev/null || fail "status --json train-03"
jq -e '.instances[] | select(.name == "train-01") | .age_ms >= 172800000' out >/dev/null || fail "status --json age"
jq -e '.open_intents == [.open_intents[0]] and .open_intents[0].name == "train-05"' out >/dev/null ||
        fail "status --json intents"

# ---- readers while a writer holds a write transaction (the daemon mid-batch) ----
coproc WRITER { trap - EXIT; exec sqlite3 "$db"; }
writer_pid=$WRITER_PID
echo "BEGIN IMMEDIATE; INSERT INTO instances (name, result) VALUES ('in-flight', 'accepted'); SELECT 'ready';" >&"${WRITER[1]}"
read -r line <&"${WRITER[0]}"
[ "$line" = ready ] || fail "writer said '$line'"
expect_rc 0 nb status
hasnt out "in-flight"
has out "7 instances recorded"
expect_rc 0 nb plan
echo "COMMIT; SELECT 'done';" >&"${WRITER[1]}"
read -r line <&"${WRITER[0]}"
[ "$line" = done ] || fail "writer said '$line'"
expect_rc 0 nb status
has out "in-flight"
exec {WRITER[1]}>&-
wait "$writer_pid" || true
writer_pid=

# ---- a broken store is a clear error naming the file, exit 2 ----
cp "$db" good.db
sqlite3 "$db" "PRAGMA user_version = 99;"
expect_rc 2 nb status
has err "state/notebookd.db: state database schema version 99 is newer"
expect_rc 2 nb plan
has err "state/notebookd.db"
rm -f "$db" "$db-wal" "$db-shm"
head -c 16384 /dev/urandom > "$db"
expect_rc 2 nb status
has err "state/notebookd.db: not a notebookd state database"
expect_rc 2 nb plan --json
has err "not a notebookd state database"
[ ! -s out ] || fail "plan --json printed something on a store error"

echo "t-plan-status: ok"
