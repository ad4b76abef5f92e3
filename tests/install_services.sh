#!/usr/bin/env bash
# Install the servers the `services` tests start privately on loopback (PostgreSQL, Redis)
# and the browser the `browser` tests drive (Chromium at /usr/bin/chromium, through Playwright;
# never `playwright install`). Idempotent: does nothing when the binaries are already there.
# Run as root (CI is root).
set -euo pipefail

have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}
have_redis() {
    command -v redis-server >/dev/null 2>&1
}
have_chromium() {
    [ -x /usr/bin/chromium ]
}

if have_postgres && have_redis && have_chromium; then
    echo "install_services: postgresql, redis-server and chromium are already installed"
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
if [ "${#pkgs[@]}" -gt 0 ]; then
    $SUDO apt-get install -y --no-install-recommends "${pkgs[@]}"
fi
if ! have_chromium; then
    # with its recommends (fonts): the browser tests read rendered text and take screenshots
    $SUDO apt-get install -y chromium
    pkgs+=(chromium)
fi
# The Debian packages start system-wide instances; the tests never use them (each test
# session starts its own private servers on free loopback ports), so stop them if they run.
if command -v service >/dev/null 2>&1; then
    $SUDO service redis-server stop >/dev/null 2>&1 || true
fi
echo "install_services: installed ${pkgs[*]}"
