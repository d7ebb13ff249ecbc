# Makes sure nats-server is installed, for a run without NATS_URL (the tests
# start a private `nats-server -js`; scripts/run starts one in .data/nats).
# Installs it when allowed (root or passwordless sudo on Debian/Ubuntu,
# Homebrew on macOS); otherwise prints the one command that would, and fails.

. "$(dirname "${BASH_SOURCE[0]}")/packages.sh"

have_nats_server() {
  command -v nats-server >/dev/null 2>&1 && return 0
  [ -x /usr/sbin/nats-server ] || [ -x /usr/bin/nats-server ]
}

# The installed nats-server's path.
nats_server_path() {
  command -v nats-server 2>/dev/null && return 0
  for candidate in /usr/sbin/nats-server /usr/bin/nats-server; do
    [ -x "$candidate" ] && echo "$candidate" && return 0
  done
  return 1
}

ensure_nats_server() {
  [ -n "${NATS_URL:-}" ] && return 0
  have_nats_server && return 0

  if command -v apt-get >/dev/null 2>&1; then
    local sudo
    if ! sudo=$(package_sudo); then
      echo "nats-server is not installed. Install it with: sudo apt-get install -y nats-server (or set NATS_URL)" >&2
      return 1
    fi
    echo "Installing nats-server from the distribution's packages..." >&2
    $sudo apt-get update -qq
    # The package's own service is not needed: the tests and scripts/run
    # start a private server.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
  elif [ "$(uname -s)" = "Darwin" ] && command -v brew >/dev/null 2>&1; then
    echo "Installing nats-server with Homebrew..." >&2
    brew install nats-server
  else
    echo "nats-server is not installed. Install your system's nats-server package, or set NATS_URL." >&2
    return 1
  fi
  have_nats_server
}
