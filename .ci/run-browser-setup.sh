#!/usr/bin/env bash
# Installs Debian's chromium for the HTML report test (test/reports.test.ts), which
# drives /usr/bin/chromium through playwright-core. Never downloads a browser build:
# without root or apt-get the test skips with a message instead.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then
  sudo apt-get update
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
else
  echo "no root/apt-get: the chromium HTML test will be skipped" >&2
fi
