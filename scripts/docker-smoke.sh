#!/usr/bin/env bash
# Smoke test of the Docker image: build it, run the chain compose runs (the image's entrypoint)
# with `docker run --network host` against a PostgreSQL database, and check what a user sees.
#
#   DOCKER_BUILD_ARGS="--build-arg TORCH_INDEX_URL= --build-arg PIP_FIND_LINKS=http://127.0.0.1:8765/" \
#     scripts/docker-smoke.sh
#
# Checks, in order (each prints "ok: ..." or stops the script with "FAILED: ..."):
#  1. the image builds (timed), and builds again from cache (timed); its size;
#  2. a fresh database: the container reaches /readyz (timed from `docker run`);
#  3. a recommendation for user 1 carries real MovieLens titles;
#  4. an admin retrain of ease is accepted and its job ends `succeeded`, the new version active;
#  5. `docker stop` during `deeprec bootstrap` on another fresh database: the container stops
#     within seconds (not the 10 s SIGKILL), the job is `failed` ("stopped by SIGTERM"), and
#     `docker start` of the same container reaches /readyz.
# Needs: docker, psql, curl, python3 on the host; PostgreSQL on PG_HOST:PG_PORT (trust auth).
# SMOKE_COLD=1 builds the first time with --no-cache. Everything it creates is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-deeprec:smoke}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-postgres}
TOKEN=${TOKEN:-smoke-admin-token}
READY_TIMEOUT=${READY_TIMEOUT:-900}
# The families the server trains after it is ready: two keep the smoke short (the default is all).
SMOKE_DEFAULT_MODELS=${SMOKE_DEFAULT_MODELS:-rbm,ease}
read -r -a BUILD_ARGS <<<"${DOCKER_BUILD_ARGS:-}"
RUN_ID="smoke$$"
CONTAINERS=()
DATABASES=()
VOLUMES=()

say() { echo "docker-smoke: $*" >&2; }
ok() { echo "ok: $*"; }
die() { echo "FAILED: $*"; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
# client_min_messages: no NOTICE for each DROP DATABASE IF EXISTS of a database not there yet.
psql_admin() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -t -A -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -c "$1"; }
psql_db() { psql -X -q -t -A -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$1" -c "$2"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cleanup() {
  for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  for v in "${VOLUMES[@]}"; do docker volume rm -f "$v" >/dev/null 2>&1 || true; done
  for d in "${DATABASES[@]}"; do psql_admin "DROP DATABASE IF EXISTS $d WITH (FORCE)" || true; done
}
trap cleanup EXIT

new_site() {  # NAME -> a fresh database and data volume for one container
  local name=$1
  psql_admin "DROP DATABASE IF EXISTS $name WITH (FORCE)"
  psql_admin "CREATE DATABASE $name"
  DATABASES+=("$name")
  docker volume rm -f "$name" >/dev/null 2>&1 || true
  docker volume create "$name" >/dev/null
  VOLUMES+=("$name")
}

start_container() {  # NAME PORT -> docker run, the image's entrypoint (the chain compose runs)
  local name=$1 port=$2
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --network host \
    -e DEEPREC_DATABASE_URL="postgresql+psycopg://$PG_USER@$PG_HOST:$PG_PORT/$name" \
    -e DEEPREC_PORT="$port" -e DEEPREC_HOST=127.0.0.1 \
    -e DEEPREC_ADMIN_TOKEN="$TOKEN" -e DEEPREC_REQUIRED_MODELS=rbm \
    -e DEEPREC_DEFAULT_MODELS="$SMOKE_DEFAULT_MODELS" -e DEEPREC_DEVICE=cpu \
    -v "$name:/data" "$IMAGE" >/dev/null
  CONTAINERS+=("$name")
}

wait_ready() {  # NAME PORT -> waits for /readyz 200 (fails if the container exits)
  local name=$1 port=$2 deadline=$(( $(date +%s) + READY_TIMEOUT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$name")" != "true" ]; then
      docker logs --tail 30 "$name" >&2 || true
      die "$name exited ($(docker inspect -f '{{.State.ExitCode}}' "$name")) before it was ready"
    fi
    if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 2
  done
  docker logs --tail 30 "$name" >&2 || true
  die "$name not ready after $READY_TIMEOUT s"
}

# ------------------------------------------------------------------------------- 1. build
say "building $IMAGE (${BUILD_ARGS[*]:-no build args})"
t0=$(now)
cold=()
[ "${SMOKE_COLD:-0}" = "1" ] && cold=(--no-cache)
docker build --network host "${cold[@]}" "${BUILD_ARGS[@]}" -t "$IMAGE" . >"/tmp/$RUN_ID-build.log" 2>&1 \
  || { tail -n 30 "/tmp/$RUN_ID-build.log"; die "docker build"; }
ok "build: $(since "$t0") s${cold:+ (cold, --no-cache)}"
t0=$(now)
docker build --network host "${BUILD_ARGS[@]}" -t "$IMAGE" . >"/tmp/$RUN_ID-build2.log" 2>&1 || die "docker build (cached)"
ok "build again from cache: $(since "$t0") s"
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
ok "image size: $(python3 -c "print(f'{$size / 1e6:.0f} MB')")"
user=$(docker run --rm --entrypoint sh "$IMAGE" -c 'id -u; test -w /app && echo writable || echo read-only')
[ "$(echo "$user" | tail -n 1)" = "read-only" ] || die "the code tree is writable by the service user"
ok "runs as uid $(echo "$user" | head -n 1); /app is read-only to it"

# ------------------------------------------------------------------------------- 2-4. serve
site="deeprec_${RUN_ID}_a"
port=$(free_port)
new_site "$site"
t0=$(now)
start_container "$site" "$port"
wait_ready "$site" "$port"
ok "ready (/readyz 200) $(since "$t0") s after docker run, fresh database"
base="http://127.0.0.1:$port"

recs=$(curl -sf "$base/v1/users/1/recommendations?k=5")
python3 - "$recs" <<'EOF' || die "recommendations for user 1: $recs"
import json, sys
data = json.loads(sys.argv[1])
items = data["items"] if isinstance(data, dict) else data
titles = [i.get("title") or "" for i in items]
assert len(items) == 5 and all(t and not t.startswith("Movie ") for t in titles), titles
print("ok: user 1 gets", "; ".join(titles))
EOF

# The server trains the missing default families in the background (--train-missing): wait for
# those jobs to end (they are what a retrain of the same family would conflict with).
for _ in $(seq 600); do
  jobs=$(curl -sf "$base/v1/admin/jobs" -H "Authorization: Bearer $TOKEN") || die "GET /v1/admin/jobs"
  active=$(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d = d["items"] if isinstance(d, dict) else d; print(sum(j["status"] in ("queued", "running") for j in d))' "$jobs")
  [ "$active" = "0" ] && break
  sleep 2
done
ok "background jobs of the missing families ended: $(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d = d["items"] if isinstance(d, dict) else d; print(", ".join(j["model_type"] + " " + j["status"] for j in d))' "$jobs")"
job=$(curl -sf -X POST "$base/v1/admin/retrain" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"model": "ease"}') || die "POST /v1/admin/retrain"
job_id=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$job")
status=queued
for _ in $(seq 300); do
  body=$(curl -sf "$base/v1/admin/jobs/$job_id" -H "Authorization: Bearer $TOKEN")
  status=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["status"])' "$body")
  case "$status" in succeeded|failed) break ;; esac
  sleep 2
done
[ "$status" = "succeeded" ] || die "retrain job $job_id ended $status: $body"
active=$(curl -sf "$base/v1/admin/models" -H "Authorization: Bearer $TOKEN")
python3 - "$active" "$job_id" <<'EOF' || die "the retrained ease version is not active: $active"
import json, sys
data = json.loads(sys.argv[1])
rows = data["items"] if isinstance(data, dict) else data
assert any(r["model_type"] == "ease" and r["is_active"] and r["version"].endswith(f"-job{sys.argv[2]}") for r in rows)
EOF
ok "admin retrain of ease: job $job_id succeeded and its version is active"
docker stop -t 30 "$site" >/dev/null

# ------------------------------------------------------------------------------- 5. stop + restart
site="deeprec_${RUN_ID}_b"
port=$(free_port)
new_site "$site"
start_container "$site" "$port"
for _ in $(seq 600); do
  docker logs "$site" 2>&1 | grep -q "training rbm (job" && break
  sleep 1
done
docker logs "$site" 2>&1 | grep -q "training rbm (job" || die "bootstrap never started training"
sleep 5  # well inside the training run
t0=$(now)
docker stop -t 30 "$site" >/dev/null
stop_s=$(since "$t0")
code=$(docker inspect -f '{{.State.ExitCode}}' "$site")
ok "docker stop during bootstrap: stopped in $stop_s s, exit code $code"
python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 10)" "$stop_s" || die "stop took $stop_s s (SIGKILL?)"
row=$(psql_db "$site" "SELECT status || ' | ' || coalesce(error, '') FROM training_job ORDER BY id LIMIT 1")
[ "$row" = "failed | stopped by SIGTERM" ] || die "the interrupted job is '$row'"
ok "the interrupted job: $row"
t0=$(now)
docker start "$site" >/dev/null
wait_ready "$site" "$port"
ok "restarted: ready $(since "$t0") s after docker start"
running=$(psql_db "$site" "SELECT count(*) FROM training_job WHERE status = 'running' AND model_type = 'rbm'")
[ "$running" = "0" ] || die "$running rbm job(s) still running after the restart"
ok "no rbm job left running"
say "all checks passed"
