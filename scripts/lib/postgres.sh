# Makes sure PostgreSQL's server binaries (initdb, pg_ctl) are installed, for a
# run without DATABASE_URL. Installs them when allowed (root or passwordless
# sudo on Debian/Ubuntu, Homebrew on macOS); otherwise prints the one command
# that would, and fails.

. "$(dirname "${BASH_SOURCE[0]}")/packages.sh"

have_postgres_binaries() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  if command -v pg_config >/dev/null 2>&1; then
    local bindir
    bindir=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] && return 0
  fi
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

ensure_postgres_binaries() {
  [ -n "${DATABASE_URL:-}" ] && return 0
  have_postgres_binaries && return 0

  if command -v apt-get >/dev/null 2>&1; then
    local sudo
    if ! sudo=$(package_sudo); then
      echo "PostgreSQL is not installed. Install it with: sudo apt-get install -y postgresql (or set DATABASE_URL)" >&2
      return 1
    fi
    echo "Installing PostgreSQL from the distribution's packages..." >&2
    # Only the binaries are needed: do not create and start a system cluster.
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
      $sudo mkdir -p /etc/postgresql-common
      echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  elif [ "$(uname -s)" = "Darwin" ] && command -v brew >/dev/null 2>&1; then
    echo "Installing PostgreSQL with Homebrew..." >&2
    brew install postgresql@16
    PATH="$(brew --prefix postgresql@16)/bin:$PATH"
    export PATH
  else
    echo "PostgreSQL is not installed. Install your system's PostgreSQL server package, or set DATABASE_URL." >&2
    return 1
  fi
  have_postgres_binaries
}
