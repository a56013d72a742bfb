#!/usr/bin/env bash
# Builds both images and runs the whole stack of docker-compose.yml on this Docker host, then
# drives the user's flow through the published API and checks it (scripts/compose_smoke.py):
# upload, train, /predict, a bulk job across `restart worker`, promote, `down` && `up`.
#
#   scripts/compose-smoke.sh               # Docker Hub in reach: the official images
#   scripts/compose-smoke.sh --standins    # no image registry: local stand-ins (scripts/standins)
#   scripts/compose-smoke.sh --keep        # leave the stack running afterwards (else down -v)
#
# Needs: a Docker engine with BuildKit (Docker 23+, or the 20.10 CLI with DOCKER_BUILDKIT=1),
# `docker compose` v2 or `docker-compose` 1.29, curl and python3 on the host; --standins also
# needs debootstrap the first time. Writes var/compose-smoke/result.json (timings, checks).
#
# Environment (all optional):
#   NER_SMOKE_PROJECT   compose project name (ner-smoke): its own containers and volumes
#   NER_API_PORT        host port of the API (18000 here; compose's own default is 8000)
#   MINIO_CONSOLE_PORT  host port (loopback) of the MinIO console (19001)
#   CA_BUNDLE           CA bundle the package registries' TLS is checked against, given to the
#                       builds as the BuildKit secret `ca_bundle` (never a file in an image)
#   PYTHON_IMAGE, PIP_INDEX_URL, TORCH_INDEX_URL, TORCH_FIND_LINKS   the Dockerfiles' build
#                       arguments (their defaults are the public sources)
#   TORCH_WHEEL_DIR     a local folder with the torch CPU wheel: served over HTTP to the
#                       builds on the Docker bridge (port NER_SMOKE_WHEEL_PORT, 18931) and
#                       passed as TORCH_FIND_LINKS
#   DEBIAN_MIRROR       mirror for debootstrap (--standins; default: the one apt uses here)
#   NER_SMOKE_BULK_DOCS documents in the bulk job (12000: still running a minute after the
#                       worker is told to restart, so the restart kills it mid-job)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STANDINS=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --standins) STANDINS=1 ;;
    --keep) KEEP=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "compose-smoke.sh: unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

PROJECT="${NER_SMOKE_PROJECT:-ner-smoke}"
export NER_API_PORT="${NER_API_PORT:-18000}"
# compose requires an API key: a fresh random one for this run (unless one is given).
export NER_API_KEYS="${NER_API_KEYS:-smoke-$(python3 -c 'import secrets; print(secrets.token_hex(24))')}"
export MINIO_CONSOLE_PORT="${MINIO_CONSOLE_PORT:-19001}"
OUT="$ROOT/var/compose-smoke"
mkdir -p "$OUT"
TIMES="$OUT/build-times.txt"
: >"$TIMES"

log() { printf '\n==> [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() {
  echo "compose-smoke.sh: $*" >&2
  exit 1
}

# -- tools ---------------------------------------------------------------------------------------

# A docker CLI that builds with BuildKit (the Dockerfiles mount a secret). Docker 23+ needs
# the buildx plugin for that; the 20.10 CLI has BuildKit built in. Debian 12's docker.io is
# 20.10, and a newer CLI without buildx may sit earlier on PATH: take the first that works.
pick_docker() {
  local candidate
  while read -r candidate; do
    [ -n "$candidate" ] || continue
    if "$candidate" buildx version >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
    local major
    major=$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
    if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done < <(type -ap docker)
  return 1
}
DOCKER_BUILD_CLI=$(pick_docker) ||
  die "no docker CLI that builds with BuildKit: install the buildx plugin (or Debian's docker.io 20.10)"
export DOCKER_BUILDKIT=1
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (is dockerd running?)"

if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  die "neither 'docker compose' (v2) nor 'docker-compose' (1.29) is installed"
fi
command -v python3 >/dev/null || die "python3 is needed on the host"
COMPOSE_FILES=(-f docker-compose.yml)
[ "$STANDINS" -eq 1 ] && COMPOSE_FILES+=(-f docker-compose.standins.yml)
COMPOSE_CMD=("${COMPOSE[@]}" -p "$PROJECT" "${COMPOSE_FILES[@]}")

SECRET_ARGS=()
if [ -n "${CA_BUNDLE:-}" ]; then
  [ -r "$CA_BUNDLE" ] || die "CA_BUNDLE=$CA_BUNDLE is not a readable file"
  SECRET_ARGS=(--secret "id=ca_bundle,src=$CA_BUNDLE")
fi

WHEEL_SERVER_PID=
cleanup() {
  local rc=$?
  # Best effort from here on: a failing step must not skip the rest or change the status.
  set +e
  if [ -n "$WHEEL_SERVER_PID" ]; then
    kill "$WHEEL_SERVER_PID" 2>/dev/null
  fi
  if [ "$KEEP" -eq 0 ]; then
    log "stopping the stack: ${COMPOSE_CMD[*]} down -v"
    "${COMPOSE_CMD[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  else
    log "stack left running (--keep): ${COMPOSE_CMD[*]} down -v  to stop it"
  fi
  exit "$rc"
}
trap cleanup EXIT

# build NAME TAG DOCKERFILE CONTEXT [ARGS...]: a timed build, its size noted in $TIMES.
build() {
  local name=$1 tag=$2 dockerfile=$3 context=$4
  shift 4
  log "build $tag ($dockerfile)"
  local t0
  t0=$(date +%s)
  nice -n 10 "$DOCKER_BUILD_CLI" build --progress plain "${SECRET_ARGS[@]}" "$@" \
    -f "$dockerfile" -t "$tag" "$context" >"$OUT/build-$name.log" 2>&1 ||
    {
      tail -n 40 "$OUT/build-$name.log" >&2
      die "building $tag failed (log: $OUT/build-$name.log)"
    }
  local size
  size=$(docker image inspect -f '{{.Size}}' "$tag")
  printf '%s\t%s\t%ss\t%s MB\n' "$name" "$tag" "$(($(date +%s) - t0))" "$((size / 1000000))" |
    tee -a "$TIMES"
}

# -- stand-ins (no image registry) --------------------------------------------------------------

if [ "$STANDINS" -eq 1 ]; then
  if ! docker image inspect ner-standin/debian:bookworm >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || die "--standins needs debootstrap (apt-get install debootstrap)"
    mirror="${DEBIAN_MIRROR:-$(grep -rhoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -n 1)}"
    mirror="${mirror:-http://deb.debian.org/debian}"
    log "base image: debootstrap --variant=minbase bookworm from $mirror"
    rootfs=$(mktemp -d /var/tmp/ner-standin-rootfs.XXXXXX)
    t0=$(date +%s)
    nice -n 10 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$OUT/debootstrap.log" 2>&1 ||
      die "debootstrap failed (log: $OUT/debootstrap.log)"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' - ner-standin/debian:bookworm >/dev/null
    rm -rf "$rootfs"
    printf 'debian\tner-standin/debian:bookworm\t%ss\n' "$(($(date +%s) - t0))" | tee -a "$TIMES"
  fi
  for name in python postgres redis minio; do
    tag=ner-standin/$name
    [ "$name" = python ] && tag=ner-standin/python:3.11
    build "standin-$name" "$tag" "scripts/standins/Dockerfile.$name" scripts/standins
  done
  export PYTHON_IMAGE="${PYTHON_IMAGE:-ner-standin/python:3.11}"
fi

# -- the service's images -----------------------------------------------------------------------

if [ -n "${TORCH_WHEEL_DIR:-}" ] && [ -z "${TORCH_FIND_LINKS:-}" ]; then
  # The builds' containers reach the host on the bridge's gateway address; serve only there.
  gateway=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
  [ -n "$gateway" ] || gateway=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
  # A fixed port: the URL is a build argument, so a new one would rebuild torch's layer.
  port="${NER_SMOKE_WHEEL_PORT:-18931}"
  python3 -u -m http.server "$port" --bind "$gateway" --directory "$TORCH_WHEEL_DIR" \
    >"$OUT/wheel-server.log" 2>&1 &
  WHEEL_SERVER_PID=$!
  # Up once it says so; gone at once when the port is taken.
  for _ in $(seq 100); do
    grep -q '^Serving HTTP' "$OUT/wheel-server.log" && break
    kill -0 "$WHEEL_SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^Serving HTTP' "$OUT/wheel-server.log" ||
    die "could not serve $TORCH_WHEEL_DIR on $gateway:$port (NER_SMOKE_WHEEL_PORT): $(tail -n 1 "$OUT/wheel-server.log")"
  export TORCH_FIND_LINKS="http://$gateway:$port/"
  log "torch wheels from $TORCH_WHEEL_DIR served at $TORCH_FIND_LINKS"
fi

BUILD_ARGS=()
for var in PYTHON_IMAGE PIP_INDEX_URL TORCH_VERSION TORCH_INDEX_URL TORCH_FIND_LINKS; do
  if [ -n "${!var:-}" ]; then
    BUILD_ARGS+=(--build-arg "$var=${!var}")
  fi
done
# The tags docker-compose.yml runs (NER_API_IMAGE / NER_WORKER_IMAGE, ner-*:local by default).
build api "${NER_API_IMAGE:-ner-api:local}" Dockerfile.api . "${BUILD_ARGS[@]}"
build worker "${NER_WORKER_IMAGE:-ner-worker:local}" Dockerfile.worker . "${BUILD_ARGS[@]}"
if [ -n "$WHEEL_SERVER_PID" ]; then
  kill "$WHEEL_SERVER_PID" 2>/dev/null || true
  WHEEL_SERVER_PID=
fi

# -- the flow ------------------------------------------------------------------------------------

log "flow: ${COMPOSE_CMD[*]}, API on http://127.0.0.1:$NER_API_PORT"
rc=0
rm -f "$OUT/result.json" # a flow that dies writes none: never report an older one
python3 scripts/compose_smoke.py \
  --compose "${COMPOSE_CMD[*]}" --project "$PROJECT" \
  --api "http://127.0.0.1:$NER_API_PORT" --result "$OUT/result.json" \
  --bulk-docs "${NER_SMOKE_BULK_DOCS:-12000}" || rc=$?

log "images (build time, size)"
cat "$TIMES"
[ -f "$OUT/result.json" ] || die "the flow ended (exit $rc) without writing $OUT/result.json"
log "result: $OUT/result.json"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
for name, seconds in r["timings_s"].items():
    print(f"    {name:<58} {seconds:>7} s")
print("    bulk job killed mid-job by the restart:", r.get("bulk_killed_mid_job"))
print("    checks passed:", len(r["checks"]))
print("==> compose smoke OK" if r["ok"] else "==> compose smoke FAILED: " + r["failure"])
' "$OUT/result.json"
exit "$rc"
