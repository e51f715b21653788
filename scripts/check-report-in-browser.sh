#!/usr/bin/env bash
# Loads a report.html in headless Chromium and saves a screenshot, to check the page in a real
# browser. Installs Debian's chromium where it can (root and apt); otherwise skips, saying why.
#
#   scripts/check-report-in-browser.sh RESULTS_DIR [SCREENSHOT.png]
set -euo pipefail
dir=${1:?usage: scripts/check-report-in-browser.sh RESULTS_DIR [SCREENSHOT.png]}
shot=${2:-$dir/report-screenshot.png}
page=$(cd "$dir" && pwd)/report.html
[[ -f $page ]] || { echo "no report.html in $dir" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || true
    browser=$(command -v chromium || true)
  fi
fi
if [[ -z $browser ]]; then
  echo "SKIPPED: Chromium is not installed and cannot be installed here (needs root and apt)."
  exit 0
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# The flags keep Chromium from reaching for the network, which this page never needs.
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1200,4000 --screenshot="$shot" "file://$page" \
  >/dev/null 2>&1
[[ -s $shot ]] || { echo "Chromium wrote no screenshot" >&2; exit 1; }
echo "screenshot: $shot"
