# Sourced by .ci/run: a throwaway PostgreSQL cluster for the suite's PostgreSQL cases.
# Installs Debian's postgresql when it is missing (CI runs as root on a fresh machine), starts
# a cluster in a temporary directory listening only on a Unix socket there, exports
# CHATSCOPE_TEST_DATABASE_URL, and stops and removes the cluster when the script exits.

postgres_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
  if [ -z "$(postgres_bin)" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local bin run_as
  bin="$(postgres_bin)"
  PG_DIR="$(mktemp -d /tmp/chatscope-pg.XXXXXX)"
  run_as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$PG_DIR"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >/dev/null
  "${run_as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-k $PG_DIR -c listen_addresses='' -c fsync=off" start >/dev/null
  PG_RUN_AS=("${run_as[@]}")
  PG_BIN="$bin"
  export CHATSCOPE_TEST_DATABASE_URL="postgresql://postgres@/postgres?host=$PG_DIR"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') for the tests at $PG_DIR"
}

stop_postgres() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
    "${PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || true
    rm -rf "$PG_DIR"
  fi
}
