#!/usr/bin/env bash
# Installs and starts what the app needs on a Debian machine, as root, and is safe to re-run:
# PostgreSQL 15 with PostGIS, Redis, and (with --browser) Chromium for the page tests.
# Then creates the databases named on the command line with the postgis and pg_trgm extensions.
#   scripts/services.sh [--browser] DB [DB...]
set -euo pipefail

browser=0
dbs=()
for arg in "$@"; do
  case "$arg" in
    --browser) browser=1 ;;
    *) dbs+=("$arg") ;;
  esac
done

export DEBIAN_FRONTEND=noninteractive
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  echo "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT"; }
redis_up() { command -v redis-cli >/dev/null && redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

# PostgreSQL and PostGIS.
apt_install postgresql-15 postgresql-15-postgis-3 postgresql-client-15
# GnuPG: the forwarding job encrypts for authorities with a PGP key (python-gnupg drives it).
apt_install gnupg
if ! pg_up; then
  echo "starting PostgreSQL"
  if ! pg_lsclusters -h | grep -q '^15 *main'; then
    pg_createcluster 15 main >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect 15 main start
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL does not answer on $PGHOST:$PGPORT" >&2; exit 1; }

# Redis: installed only when none answers (machines of this kind run one already).
if ! redis_up; then
  apt_install redis-server redis-tools
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/stopapp.log
  for _ in $(seq 30); do redis_up && break; sleep 1; done
fi
redis_up || { echo "Redis does not answer on $REDIS_HOST:$REDIS_PORT" >&2; exit 1; }

if [ "$browser" = 1 ]; then
  # Debian's Chromium: Playwright drives it; its own browser download is not reachable here.
  apt_install chromium fonts-dejavu-core
fi

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$@"; }
for db in "${dbs[@]}"; do
  if ! psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    echo "creating database $db"
    psql_admin -d postgres -c "CREATE DATABASE \"$db\""
  fi
  psql_admin -d "$db" -c "CREATE EXTENSION IF NOT EXISTS postgis" \
    -c "CREATE EXTENSION IF NOT EXISTS pg_trgm"
done
