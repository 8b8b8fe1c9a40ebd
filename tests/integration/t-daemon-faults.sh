#!/usr/bin/env bash
# t-daemon-basic.sh under injected faults: the emulator answers 20% of
# API requests 500 and 10% 429 (and the first of each for sure). READY=1 still comes
# before any create, every example converges to RUNNING through the retries, with
# exactly one instance per name and no duplicate create; SIGTERM still exits 0.
exec bash "$(dirname "$0")/t-daemon-basic.sh" --faults "$@"
