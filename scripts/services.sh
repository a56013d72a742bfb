#!/usr/bin/env bash
# Starts/stops the real servers the service tests use, each on a loopback port that
# does not clash with a system-wide install: PostgreSQL 15 (OS package binaries),
# Redis (redis-server) and moto's standalone S3 server (a Python package, own process).
#
#   scripts/services.sh start   # start what is not running yet; writes var/services/env
#   scripts/services.sh stop    # stop what `start` started
#   scripts/services.sh env     # print the NER_* variables (source-able)
#   scripts/services.sh status  # exit 0 when all three answer
#   scripts/services.sh pg-stop | pg-start   # take PostgreSQL away and back (fault tests)
#
# Ports can be overridden: NER_PG_PORT, NER_REDIS_PORT, NER_S3_PORT.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${NER_SERVICES_DIR:-$ROOT/var/services}"
PG_PORT="${NER_PG_PORT:-54329}"
REDIS_PORT="${NER_REDIS_PORT:-63799}"
S3_PORT="${NER_S3_PORT:-59000}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
VENV_BIN="$ROOT/.venv/bin"
MOTO_SERVER="$VENV_BIN/moto_server"
[ -x "$MOTO_SERVER" ] || MOTO_SERVER="$(command -v moto_server || true)"

mkdir -p "$DIR"

env_lines() {
  cat <<ENV
export NER_DATABASE_URL=postgresql+psycopg://ner:ner@127.0.0.1:$PG_PORT/ner
export NER_BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0
export NER_STORAGE_URL=s3://ner-test/objects
export NER_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
ENV
}

# PostgreSQL refuses to run as root: run its binaries as the `postgres` user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_up() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; }
s3_up() { curl -sf -o /dev/null "http://127.0.0.1:$S3_PORT/moto-api/" 2>/dev/null; }

wait_for() {
  local what=$1 check=$2 i
  for i in $(seq 1 60); do
    if $check; then return 0; fi
    sleep 0.5
  done
  echo "services.sh: $what did not come up" >&2
  return 1
}

# Where PostgreSQL keeps its data: $DIR/pg, unless the `postgres` user cannot reach $DIR
# (a checkout under a private directory, e.g. one made by mktemp -d, run as root): then a
# directory of its own under /tmp, recorded in $DIR/pg.datadir so `stop` finds it.
pg_data_dir() {
  if [ -n "${PG_DATA:-}" ]; then echo "$PG_DATA"
  elif [ -f "$DIR/pg.datadir" ]; then cat "$DIR/pg.datadir"
  else echo "$DIR/pg"
  fi
}

start_pg() {
  if pg_up; then return 0; fi
  local data
  data=$(pg_data_dir)
  if [ "$(id -u)" = 0 ] && [ "$data" = "$DIR/pg" ] && ! runuser -u postgres -- test -x "$DIR"; then
    data=$(mktemp -d /tmp/ner-pg.XXXXXX)
    chown postgres "$data"
    echo "$data" >"$DIR/pg.datadir"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$data"; fi
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$DIR/pg-initdb.log" 2>&1
  fi
  if [ "$(id -u)" = 0 ]; then chown postgres "$data"; fi
  # Sockets go to the data directory: /var/run/postgresql may not exist or be writable.
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $PG_PORT -h 127.0.0.1 -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null
  touch "$DIR/pg.started"
  wait_for postgresql pg_up
  local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
  if [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname='ner'")" != 1 ]; then
    "${psql[@]}" -c "create role ner login password 'ner' createdb"
  fi
  if [ "$("${psql[@]}" -c "select 1 from pg_database where datname='ner'")" != 1 ]; then
    "${psql[@]}" -c "create database ner owner ner"
  fi
}

start_redis() {
  if redis_up; then return 0; fi
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR"
  touch "$DIR/redis.started"
  wait_for redis redis_up
}

start_s3() {
  if s3_up; then return 0; fi
  [ -n "$MOTO_SERVER" ] || { echo "services.sh: moto_server not found (pip install 'moto[server]')" >&2; return 1; }
  nohup "$MOTO_SERVER" -H 127.0.0.1 -p "$S3_PORT" >"$DIR/s3.log" 2>&1 &
  echo $! >"$DIR/s3.pid"
  wait_for "s3 server" s3_up
}

stop_pg() {
  [ -f "$DIR/pg.started" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$(pg_data_dir)" -m fast -w stop >/dev/null 2>&1 || true
  if [ -f "$DIR/pg.datadir" ]; then
    rm -rf "$(cat "$DIR/pg.datadir")" "$DIR/pg.datadir"
  fi
  rm -f "$DIR/pg.started"
}

stop_redis() {
  [ -f "$DIR/redis.started" ] || return 0
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$DIR/redis.started"
}

stop_s3() {
  [ -f "$DIR/s3.pid" ] || return 0
  kill "$(cat "$DIR/s3.pid")" 2>/dev/null || true
  rm -f "$DIR/s3.pid"
}

case "${1:-}" in
  start)
    start_pg
    start_redis
    start_s3
    env_lines >"$DIR/env"
    echo "# services up; source $DIR/env or:" >&2
    env_lines
    ;;
  stop)
    stop_s3
    stop_redis
    stop_pg
    ;;
  env)
    env_lines
    ;;
  pg-stop)
    # Fault tests: the database goes away (fast shutdown) and comes back (pg-start). The
    # server on the port is asked for its data directory: it may be another checkout's.
    data=$("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtc 'show data_directory')
    echo "$data" >"$DIR/pg.stopped"
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    ;;
  pg-start)
    PG_DATA=$(cat "$DIR/pg.stopped" 2>/dev/null || echo "$DIR/pg") start_pg >/dev/null
    rm -f "$DIR/pg.stopped"
    ;;
  status)
    pg_up && redis_up && s3_up
    ;;
  *)
    echo "usage: $0 start|stop|env|status|pg-stop|pg-start" >&2
    exit 2
    ;;
esac
