#!/bin/sh
# The TLS tests need a server built with TLS; the bundled valkey-server is
# not. Debian's redis-server is: use the one on PATH, or install it (as root,
# with apt) so that CI runs those tests for real instead of skipping them.
set -eu
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's redis-server (TLS-capable) for the TLS tests"
    # Only the binary is wanted: no service is started in a container without init.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null
    exit 0
fi
echo "The TLS tests need a redis-server built with TLS on PATH (e.g. apt install redis-server)." >&2
exit 1
