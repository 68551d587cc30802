#!/usr/bin/env bash
# PostgreSQL's CPU per refresh-token rotation, without the server: rotation.sql under pgbench, on a copy of the
# tables of a running benchmark (its schema bench_<pid> is dropped when it ends). Run it while
# `npm run bench -- --rounds 1 --only refresh` is measuring; it waits for the seeded refresh-token pool.
# Usage: bash bench/pgbench/rotation.sh [offered rotations/s, default: flat out] [seconds, default 8]
# Needs pgbench and psql, and to run on the database's machine (it reads the postgres processes' CPU in /proc).
set -euo pipefail
URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
RATE=${1:-}
SECONDS_MEASURED=${2:-8}
SCRATCH=pgbench_rotation
here=$(dirname "$0")
sql() { PGOPTIONS="-c client_min_messages=warning" psql "$URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }

source_schema=""
for _ in $(seq 1 120); do
  source_schema=$(sql -c "select schemaname from pg_stat_user_tables
    where relname = 'oidc_models' and schemaname like 'bench\_%' and n_live_tup >= 200000 limit 1")
  [ -n "$source_schema" ] && break
  sleep 1
done
[ -n "$source_schema" ] || { echo "no benchmark schema with a seeded refresh-token pool appeared" >&2; exit 1; }

sql -c "drop schema if exists $SCRATCH cascade" -c "create schema $SCRATCH" \
  -c "create table $SCRATCH.oidc_models (like $source_schema.oidc_models including all)" \
  -c "insert into $SCRATCH.oidc_models select * from $source_schema.oidc_models" \
  -c "create table $SCRATCH.users (like $source_schema.users including all)" \
  -c "insert into $SCRATCH.users select * from $source_schema.users" \
  -c "create table $SCRATCH.pool as select row_number() over () as n, id from $SCRATCH.oidc_models where model = 'RefreshToken'" \
  -c "create unique index on $SCRATCH.pool (n)" -c "vacuum analyze $SCRATCH.oidc_models" -c "checkpoint"
trap 'sql -c "drop schema if exists $SCRATCH cascade"' EXIT
pool_size=$(sql -c "select count(*) from $SCRATCH.pool")

# Every postgres process's user + system CPU, in clock ticks; backends are read while connected.
postgres_ticks() { local sum=0; for pid in $(pgrep -x postgres); do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done; echo "$sum"; }
commits() { sql -c "select xact_commit from pg_stat_database where datname = current_database()"; }

PGOPTIONS="-c search_path=$SCRATCH" pgbench "$URL" -n -M prepared -c 8 -j 2 -T $((SECONDS_MEASURED + 3)) \
  ${RATE:+-R "$RATE"} -D pool_size="$pool_size" -f "$here/rotation.sql" > /dev/null &
bench=$!
sleep 2
ticks_before=$(postgres_ticks); commits_before=$(commits)
sleep "$SECONDS_MEASURED"
ticks_after=$(postgres_ticks); commits_after=$(commits)
wait "$bench"
# Each rotation is two statements in autocommit, so two commits.
rotations=$(( (commits_after - commits_before) / 2 ))
ticks_per_second=$(getconf CLK_TCK)
echo "rotations/s: $((rotations / SECONDS_MEASURED)), PostgreSQL CPU µs per rotation: $(( (ticks_after - ticks_before) * 1000000 / ticks_per_second / rotations ))"
