#!/usr/bin/env bash
# Installs Debian's Chromium and its WebDriver (chromium, chromium-driver) for tests/test_html_browser.py.
# Never fails the CI run: when it cannot install, it says why and the browser test skips with its own reason.
set -u

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "install_browser: chromium and chromedriver already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get on this machine; not installing (the browser test will skip)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"   # -n: fail instead of waiting for a password nobody will type
    else
        echo "install_browser: not root and no sudo; not installing (the browser test will skip)"
        exit 0
    fi
fi

log=$(mktemp)
run() {
    if ! $SUDO env DEBIAN_FRONTEND=noninteractive "$@" >"$log" 2>&1; then
        echo "install_browser: '$*' failed; not installing (the browser test will skip). Its last lines:"
        tail -n 15 "$log"
        rm -f "$log"
        exit 0
    fi
}
run apt-get update -q
run apt-get install -y -q --no-install-recommends chromium chromium-driver
rm -f "$log"
echo "install_browser: installed $(chromium --version 2>/dev/null), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)"
exit 0
