#!/usr/bin/env bash
# Installs Debian's chromium for the HTML report test (test/reports.test.ts), which
# drives /usr/bin/chromium through playwright-core. Never downloads a browser build:
# without root or apt-get the test skips with a message instead.
set -uo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
  exit 0
fi
if [ "${CI:-}" != "true" ]; then
  echo "chromium absent: the HTML report browser test will be skipped (CI=true installs Debian's chromium)" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
    || echo "apt-get could not install chromium: the browser test will be skipped" >&2
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then
  { sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
    || echo "apt-get could not install chromium: the browser test will be skipped" >&2
else
  echo "no root/apt-get: the chromium HTML test will be skipped" >&2
fi
