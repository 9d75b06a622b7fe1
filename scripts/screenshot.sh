#!/usr/bin/env bash
# Render one page of the built book to a PNG with headless Chromium (Debian: apt-get install -y chromium).
#   scripts/screenshot.sh [page.html] [out.png] [width,height]
# Not needed by CI; tests/test_book.py checks the HTML without a browser.
set -euo pipefail
page=${1:-_build/html/notebooks/05_error_bounds.html}
out=${2:-_build/screenshot.png}
size=${3:-1280,2000}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "no chromium found: install it (Debian/Ubuntu: apt-get install -y chromium)" >&2
  exit 1
fi
[ -f "$page" ] || { echo "no page $page: build the book first (make book or make book-cached)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --hide-scrollbars --virtual-time-budget=5000 \
  --screenshot="$(realpath "$out")" --window-size="$size" "file://$(realpath "$page")" 2>/dev/null
echo "screenshot: $out"
