#!/bin/sh
# The container's start-up chain (the Dockerfile's ENTRYPOINT; docker-compose.yml runs it too):
#   deeprec db upgrade -> data fetch -> data load -> bootstrap --required-only
#   -> exec deeprec serve --train-missing
# so the API answers as soon as DEEPREC_REQUIRED_MODELS are trained; the other default families
# train afterwards as ordinary jobs. With arguments it runs them instead (`docker run IMAGE deeprec
# recommend ...`).
#
# Signals: a shell that is PID 1 ignores SIGTERM, so `docker stop` used to wait 10 s and SIGKILL
# the chain, leaving a training job `running`. Here each step runs as a child the shell waits for;
# SIGTERM or SIGINT is passed on to it (deeprec then marks its job failed, "stopped by SIGTERM",
# and stops its worker) and the script exits 143. The server replaces the shell (exec), so it gets
# `docker stop`'s SIGTERM itself.
set -u

if [ "$#" -gt 0 ]; then
  exec "$@"
fi

child=""
on_signal() {
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null
    wait "$child"
  fi
  exit 143
}
trap on_signal TERM INT

run() {
  echo "entrypoint: $*" >&2
  "$@" &
  child=$!
  status=0
  wait "$child" || status=$?
  child=""
  if [ "$status" -ne 0 ]; then
    echo "entrypoint: '$*' failed with exit code $status" >&2
    exit "$status"
  fi
}

dataset=${DEEPREC_DATASET:-ml-100k}
run deeprec db upgrade
run deeprec data fetch "$dataset"
run deeprec data load "$dataset" --no-progress
run deeprec bootstrap --required-only
exec deeprec serve --host "${DEEPREC_HOST:-0.0.0.0}" --port "${DEEPREC_PORT:-8000}" --train-missing
