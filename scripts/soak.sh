#!/usr/bin/env bash
# The soak: `syncmon run` (release build) against the simulated source on loopback with every
# fault at once (429, 5xx, resets, truncated and slow bodies, invalid JSON, records without id or
# rowVersion, duplicate ids, outages), steady changes, late commits, poison records, signed
# webhooks and periodic full resyncs, SIGKILLed at random moments and restarted. It ends by
# checking that the replica equals the source, every poison record is a failed item, memory and
# open files stayed flat and the request log kept its retention, and prints the figures.
#
# Usage: scripts/soak.sh DURATION [RECORDS]
#   DURATION  how long to drive the agent: 90s, 10m, 30m, 2h (catching up afterwards adds 1-7 min)
#   RECORDS   the data set, split over 3 entities (default 6,000 up to 5 minutes, else 60,000)
# Environment: SYNCMON_SOAK_SEED=N repeats a run (the seed is printed).
# The 2-minute version runs in `scripts/test.sh` (crates/syncmon-cli/tests/soak.rs, debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || $# -gt 2 ]]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
duration="$1"
number="${duration%[hms]}"
if ! [[ "$number" =~ ^[0-9]+$ ]]; then
  echo "soak.sh: DURATION is a whole number with s, m or h, e.g. 30m (got \"$duration\")" >&2
  exit 2
fi
case "$duration" in
  *h) secs=$(( number * 3600 )) ;;
  *m) secs=$(( number * 60 )) ;;
  *) secs=$number ;;
esac
if (( secs < 30 )); then
  echo "soak.sh: DURATION must be at least 30s, e.g. 30m (got \"$duration\")" >&2
  exit 2
fi
export SYNCMON_SOAK_SECS="$secs"
if [[ $# -eq 2 ]]; then
  export SYNCMON_SOAK_RECORDS="$2"
fi
exec cargo test --release --locked -p syncmon-cli --test soak -- --nocapture --test-threads=1
