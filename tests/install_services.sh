#!/usr/bin/env bash
# Install the servers the `services` tests start privately on loopback (PostgreSQL, Redis).
# Idempotent: does nothing when the binaries are already there. Run as root (CI is root).
set -euo pipefail

have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}
have_redis() {
    command -v redis-server >/dev/null 2>&1
}

if have_postgres && have_redis; then
    echo "install_services: postgresql and redis-server are already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

pkgs=()
have_postgres || pkgs+=(postgresql)
have_redis || pkgs+=(redis-server)

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${pkgs[@]}"
# The Debian packages start system-wide instances; the tests never use them (each test
# session starts its own private servers on free loopback ports), so stop them if they run.
if command -v service >/dev/null 2>&1; then
    $SUDO service redis-server stop >/dev/null 2>&1 || true
fi
echo "install_services: installed ${pkgs[*]}"
