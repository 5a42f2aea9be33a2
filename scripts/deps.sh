#!/bin/sh
# Installs (as root) or names (otherwise) the Debian packages the build and
# the tests need. Quiet when everything is there.
set -eu
PKGS="build-essential cmake pkg-config libevent-dev libjansson-dev
libcurl4-openssl-dev libyaml-dev libcunit1-dev libsqlite3-dev sqlite3 libssl-dev
python3 curl prometheus wrk clang-format"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # prometheus's postinst may try to start the service; that is harmless here.
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: install them with: sudo apt-get install$missing" >&2
    exit 1
fi
