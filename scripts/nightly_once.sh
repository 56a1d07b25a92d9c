#!/usr/bin/env bash
# `nightly_once.sh LOCKFILE COMMAND [ARGS...]`: run COMMAND (e.g. `bench nightly SUITE`) unless
# another run holds LOCKFILE, so that two nights never overlap on one host (cron starts the
# next night while a long one still runs).
#
# A night skipped because the lock is held prints one line and exits 75, as `bench nightly`
# does when a live runner (on any host) still holds the suite: nothing was judged, so not 0
# (a pass), and neither 1 (`flock -n` alone exits 1, bench's code for "regression") nor 2 (a
# broken set-up). Otherwise the exit code is COMMAND's (docs/scheduling.md: 0 pass,
# 1 regression or failed cell, 2 set-up error, 75 skipped, 130, 143).
set -uo pipefail
if [ "$#" -lt 2 ]; then
  echo "usage: nightly_once.sh LOCKFILE COMMAND [ARGS...]" >&2
  exit 2
fi
lock=$1
shift
if ! { exec 9>>"$lock"; } 2>/dev/null; then
  echo "nightly_once.sh: cannot open the lock file $lock; give a writable path" >&2
  exit 2
fi
if ! flock -n 9; then
  echo "skipped: another nightly holds $lock; this night's run did not start (exit 75)"
  exit 75
fi
# fd 9 stays open in COMMAND: the lock is held until it exits, whatever kills it
exec "$@"
