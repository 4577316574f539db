#!/bin/sh
# `make test-tools`: what the browser and PDF tests need on this machine, installed when
# missing, so that `make test` on a fresh machine runs them instead of erroring.
#
# The browser tests drive Debian's Chromium (Playwright cannot download a browser here) and
# the PDF tests look at receipts and statements as pictures with poppler's pdftoppm. They
# count as there only if Chromium renders a page headless and pdftoppm runs: a binary left
# by a half-done install does not.
#
# A fresh machine's first boot may still be running apt (its lists update, upgrades) when
# make test starts. `apt-get install` waits for dpkg's lock (DPkg::Lock::Timeout), but
# `apt-get update` does not wait for the lists' lock (it fails at once, "Could not get lock
# /var/lib/apt/lists/lock"), and an empty or stale list cannot locate chromium. So the
# install, and an update followed by the install, are tried again every 20 s for up to
# five minutes before giving up with the command to run.
set -u

PACKAGES="chromium poppler-utils"
ATTEMPTS=15
PAUSE_SECONDS=20

works() {
    timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu --dump-dom about:blank \
        >/dev/null 2>&1 && /usr/bin/pdftoppm -v >/dev/null 2>&1
}

works && exit 0

if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"  # a person's own machine: sudo asks for the password if it must
else
    echo "The tests need Chromium and pdftoppm: as root, run 'apt-get install -y $PACKAGES', then make test"
    exit 1
fi

apt() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 "$@"
}

echo "installing what the browser and PDF tests use (${SUDO:+sudo }apt-get install -y $PACKAGES)"
attempt=1
until apt install -y $PACKAGES >/dev/null || { apt update >/dev/null && apt install -y $PACKAGES >/dev/null; }; do
    if [ "$attempt" -ge "$ATTEMPTS" ]; then
        break
    fi
    echo "apt is busy or failed (attempt $attempt of $ATTEMPTS); trying again in $PAUSE_SECONDS s"
    attempt=$((attempt + 1))
    sleep "$PAUSE_SECONDS"
done

if ! works; then
    echo "Chromium or pdftoppm is still missing or does not run: run '${SUDO:+sudo }apt-get update && ${SUDO:+sudo }apt-get install -y $PACKAGES', then make test"
    exit 1
fi
