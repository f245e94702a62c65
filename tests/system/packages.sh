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
# Root installs; a user with password-less sudo may install too; anyone else gets one line saying
# what is missing (the suite would otherwise end in pages of Selenium and psql errors).
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "make test: missing Debian packages ${missing[*]}; install them as root (apt-get install" \
         "${missing[*]}) and re-run, or run \`make test-fast\`, which needs none of them" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "make test: missing ${missing[*]} and no apt-get to install them; install their equivalents" \
         "(Chromium with ChromeDriver, PostgreSQL, procps, iproute2) or run \`make test-fast\`" >&2
    exit 1
fi
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    # The tests start their own server; the package's default cluster would only hold port 5432.
    "${as_root[@]}" mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | "${as_root[@]}" tee -a /etc/postgresql-common/createcluster.conf >/dev/null
fi
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
