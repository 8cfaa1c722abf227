# Sourced by scripts/test on a machine with no PostgreSQL on 127.0.0.1:5432:
# start a private cluster in a temporary folder, stopped when the tests end.
set -euo pipefail
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$pg_bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing PostgreSQL (Debian package) for the tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  else
    echo "The tests need PostgreSQL: install it, or set HERD_TEST_POSTGRES_URL" >&2
    exit 1
  fi
fi
pg_dir="$(mktemp -d /tmp/herd-pg.XXXXXX)"
pg_port="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
as_pg() { if [ "$(id -u)" = 0 ]; then chown -R postgres "$pg_dir"; runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w start \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
trap 'as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null; rm -rf "$pg_dir"' EXIT
export HERD_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/postgres"
echo "Started a private PostgreSQL on 127.0.0.1:$pg_port"
