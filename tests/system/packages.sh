#!/usr/bin/env bash
# The Debian packages the test suite drives for real, installed when missing (`make test` runs this
# first, so a fresh machine needs nothing by hand): Chromium + ChromeDriver for the demo's browser
# test, PostgreSQL as the MLflow tracking server's backend store, procps (pkill/pgrep: the tests
# stop what they start) and iproute2 (ss: the tests read which addresses a server listens on).
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v pkill >/dev/null || missing+=(procps)
command -v ss >/dev/null || missing+=(iproute2)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
((${#missing[@]})) || exit 0
if [ "$(id -u)" != 0 ]; then
    echo "tests/system/packages.sh: missing ${missing[*]}; install them as root (apt-get install" \
         "${missing[*]}), or the tests that need them fail or are skipped" >&2
    exit 0
fi
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    # The tests start their own server; the package's default cluster would only hold port 5432.
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
