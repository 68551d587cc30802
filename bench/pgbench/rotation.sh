#!/usr/bin/env bash
# PostgreSQL's CPU per refresh-token rotation, without the server: the server's own two statements
# (rotation-script.ts) under pgbench, on a copy of the tables of a running benchmark (its schema bench_<pid> is
# dropped when it ends). Start `npm run bench -- --rounds 1 --only refresh` first: this waits for its seeded
# refresh-token pool, copies it, and measures once the benchmark has ended, so that only pgbench's load counts.
# Usage: bash bench/pgbench/rotation.sh [rate…]: one measurement per rate, offered rotations/s or `max` for flat
# out (the default); ROTATION_SECONDS long each (default 8), ROTATION_CLIENTS connections (default 8), each on a
# fresh copy of the tables, with the benchmark table's fillfactor; ROTATION_FILLFACTORS="100 85" alternates those
# over the measurements instead (an A/B of the page's free space), and each line reports the HOT updates among
# the rotation's consumes.
# Needs pgbench and psql, and to run on the database's machine (it reads the stores' CPU in /proc).
set -euo pipefail
URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
RATES=("${@:-max}")
SECONDS_MEASURED=${ROTATION_SECONDS:-8}
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

script=$(mktemp)
trap 'rm -f "$script"; sql -c "drop schema if exists $SCRATCH cascade"' EXIT
sql -c "drop schema if exists $SCRATCH cascade" -c "create schema $SCRATCH" \
  -c "create table $SCRATCH.seeded as select * from $source_schema.oidc_models" \
  -c "create table $SCRATCH.oidc_models (like $source_schema.oidc_models including all)" \
  -c "create table $SCRATCH.users (like $source_schema.users including all)" \
  -c "insert into $SCRATCH.users select * from $source_schema.users" \
  -c "create table $SCRATCH.pool as select row_number() over () as n, id from $SCRATCH.seeded where model = 'RefreshToken'" \
  -c "create unique index on $SCRATCH.pool (n)"
pool_size=$(sql -c "select count(*) from $SCRATCH.pool")
# LIKE copies no storage parameters: the table's fillfactor (migration 0004), unless an A/B list is given.
read -r -a fillfactors <<< "${ROTATION_FILLFACTORS:-$(sql -c "select coalesce((select option_value from
  pg_options_to_table(reloptions) where option_name = 'fillfactor'), '100') from pg_class where oid = '$source_schema.oidc_models'::regclass")}"
measured=0
# Each successor is stored with the payload, grant and account of a real refresh token, as the server would.
read -r grant_id account_id < <(sql -F ' ' -c "select grant_id, account_id from $SCRATCH.seeded where model = 'RefreshToken' limit 1")
payload=$(sql -c "select payload from $SCRATCH.seeded where model = 'RefreshToken' limit 1")
# On the project's Node (the `node` package), as npm scripts run.
PATH="$here/../../node_modules/.bin:$PATH" tsx "$here/rotation-script.ts" > "$script"

# The benchmark's own load would be counted too: measure once it has ended (and dropped its schema).
for _ in $(seq 1 1800); do
  [ -z "$(sql -c "select 1 from pg_namespace where nspname = '$source_schema'")" ] && break
  sleep 1
done

# The stores' CPU seconds so far, counted as the benchmark counts them (bench/lib/processes.ts): PostgreSQL's
# processes with the backends the postmaster has reaped, and Redis, idle here.
store_cpu() { PATH="$here/../../node_modules/.bin:$PATH" tsx "$here/store-cpu.ts"; }

updates() { sql -F ' ' -c "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables where schemaname = '$SCRATCH' and relname = 'oidc_models'"; }

measure() { # $1: offered rotations/s, or max; each on the tables as seeded
  local fillfactor=${fillfactors[$((measured++ % ${#fillfactors[@]}))]} updated_before hot_before updated_after hot_after
  sql -c "alter table $SCRATCH.oidc_models set (fillfactor = $fillfactor)" -c "truncate $SCRATCH.oidc_models" \
    -c "insert into $SCRATCH.oidc_models select * from $SCRATCH.seeded" -c "vacuum analyze $SCRATCH.oidc_models" -c "checkpoint"
  read -r updated_before hot_before < <(updates)
  local rate_option=() output cpu_before cpu_after rotations
  [ "$1" = max ] || rate_option=(-R "$1")
  cpu_before=$(store_cpu)
  output=$(PGOPTIONS="-c search_path=$SCRATCH" pgbench "$URL" -n -M prepared -c "${ROTATION_CLIENTS:-8}" -j 2 -T "$SECONDS_MEASURED" "${rate_option[@]}" \
    -D pool_size="$pool_size" -D payload="$payload" -D grant_id="$grant_id" -D account_id="$account_id" \
    -f "$script" 2>&1) || { echo "$output" >&2; return 1; }
  sleep 1 # the postmaster reaps the backends
  cpu_after=$(store_cpu)
  # One transaction of the script is one rotation.
  rotations=$(awk -F': ' '/number of transactions actually processed/ { split($2, n, "/"); print n[1] }' <<< "$output")
  read -r updated_after hot_after < <(updates)
  echo "offered $1, fillfactor $fillfactor: $((rotations / SECONDS_MEASURED)) rotations/s, store CPU per rotation" \
    "$(awk -v before="$cpu_before" -v after="$cpu_after" -v n="$rotations" 'BEGIN { printf "%.0f", (after - before) * 1e6 / n }') µs," \
    "$(( (hot_after - hot_before) * 100 / (updated_after - updated_before > 0 ? updated_after - updated_before : 1) )) % of updates HOT"
}

for rate in "${RATES[@]}"; do measure "$rate"; done
