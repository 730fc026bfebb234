#!/usr/bin/env bash
# Installs what the browser tests need, if it is missing: Debian's Chromium (the tests never
# download a browser) and the npm packages of tests/web (playwright-core, axe-core) at the
# versions package-lock.json pins. Safe to run again; the Rust test tests/web.rs runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

chromium="${UNIONE_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "tests/web: installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
      || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "tests/web: installing Debian's chromium (sudo)" >&2
    sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null
  else
    echo "tests/web: $chromium is missing; install Debian's chromium package (apt-get install chromium) or set UNIONE_CHROMIUM" >&2
    exit 1
  fi
fi

if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "tests/web: installing Debian's nodejs and npm" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm >/dev/null 2>&1 \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm >/dev/null; }
fi
if ! command -v npm >/dev/null; then
  echo "tests/web: npm is missing; install Node.js 20 or later (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
stamp="$here/node_modules/.unione-lock"
if [ ! -f "$stamp" ] || ! cmp -s "$here/package-lock.json" "$stamp"; then
  echo "tests/web: npm ci" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$here/package-lock.json" "$stamp"
fi
