#!/usr/bin/env bash
# make run: the daemon, for real, against the local ModelArts emulator.
# Starts build/modelarts-emulator on a free loopback port with demo credentials, then
# `notebookd run` in the foreground on manifests/, logging to the console. Edit or add a
# file in manifests/ from another terminal and watch it reconciled. Ctrl-C stops both.
set -euo pipefail
BUILD=${BUILD:-build}
demo=$BUILD/demo
# The emulator keeps its instances in memory: start the recorded state afresh with it.
rm -rf "$demo/state"
mkdir -p "$demo/credentials"
chmod 0700 "$demo/credentials"

# Demo credentials: the emulator checks real SDK-HMAC-SHA256 signatures made with them.
ak=DEMOACCESSKEY0000001
sk=demo-secret-key-for-the-local-emulator
project=0123456789abcdef0123456789abcdef
(umask 077 && printf '%s' "$ak" >"$demo/credentials/ak" && printf '%s' "$sk" >"$demo/credentials/sk")

rm -f "$demo/port"
"$BUILD/modelarts-emulator" --listen 127.0.0.1:0 --port-file "$demo/port" \
        --ak "$ak" --sk "$sk" --project-id "$project" \
        --create-delay-ms "${DEMO_CREATE_DELAY_MS:-3000}" >"$demo/emulator.log" 2>&1 &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true; wait "$emulator" 2>/dev/null || true' EXIT

# The emulator writes the port file atomically once it listens.
for _ in $(seq 100); do
        [ -s "$demo/port" ] && break
        kill -0 "$emulator" 2>/dev/null || { cat "$demo/emulator.log" >&2; exit 1; }
        sleep 0.05
done
port=$(cat "$demo/port")

cat >"$demo/notebookd.yaml" <<CONF
# written by make run
endpoint: http://127.0.0.1:$port
project_id: $project
manifests: $PWD/manifests
state_dir: $PWD/$demo/state
resync_interval: 60s
CONF

echo "make run: emulator on http://127.0.0.1:$port (log: $demo/emulator.log)"
echo "make run: notebookd run -c $demo/notebookd.yaml; edit manifests/ to see it react; Ctrl-C to stop"
echo "make run: in another terminal: $BUILD/notebookd -c $demo/notebookd.yaml status"
# systemd's LoadCredential= hands credentials over the same way
CREDENTIALS_DIRECTORY=$PWD/$demo/credentials "$BUILD/notebookd" -c "$demo/notebookd.yaml" \
        --log-target=console run || status=$?
exit "${status:-0}"
