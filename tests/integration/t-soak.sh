#!/usr/bin/env bash
# The soak's short variant for the suite: 10 cycles of 1,000 manifests added and removed
# (tests/soak/soak.sh says what is measured and asserted; `make soak` runs 100).
NB_SOAK_CYCLES=${NB_SOAK_CYCLES:-10} exec bash "$(dirname "$0")/../soak/soak.sh" "$@"
