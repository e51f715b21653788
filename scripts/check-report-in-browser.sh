#!/usr/bin/env bash
# Loads a report.html in headless Chromium, saves a screenshot, and checks the page's layout as
# a reader's browser draws it: no horizontal overflow, every chart a non-empty box, and no cell
# of the scenario tables wrapped onto a second line. Exits 1 on a problem, naming it. Installs
# Debian's chromium where it can (root and apt); otherwise skips, saying why (exit 0).
#
#   scripts/check-report-in-browser.sh RESULTS_DIR [SCREENSHOT.png]
#   scripts/check-report-in-browser.sh --install     # only install Chromium (what .ci/run does)
#
# The report itself has no scripts; the checks run in a wrapper page that loads it in a frame
# (`--allow-file-access-from-files` lets the wrapper read the frame's layout).
set -euo pipefail
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } || true
  browser=$(command -v chromium || true)
fi
if [[ ${1:-} == --install ]]; then
  echo "chromium: ${browser:-not installed (needs root and apt); the browser test will skip}"
  exit 0
fi
dir=${1:?usage: scripts/check-report-in-browser.sh RESULTS_DIR [SCREENSHOT.png] | --install}
shot=${2:-$dir/report-screenshot.png}
page=$(cd "$dir" && pwd)/report.html
[[ -f $page ]] || { echo "no report.html in $dir" >&2; exit 1; }
if [[ -z $browser ]]; then
  echo "SKIPPED: Chromium is not installed and cannot be installed here (needs root and apt)."
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The flags keep Chromium from reaching for the network, which this page never needs.
run_browser() {
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" "$@" 2>/dev/null
}
run_browser --window-size=1200,4000 --screenshot="$shot" "file://$page" >/dev/null
[[ -s $shot ]] || { echo "Chromium wrote no screenshot" >&2; exit 1; }
echo "screenshot: $shot"

cat >"$work/check.html" <<EOF
<!DOCTYPE html><html><body style="margin:0">
<iframe id="report" src="file://$page" style="width:1200px;height:900px;border:0"></iframe>
<pre id="verdict">not loaded</pre>
<script>
document.getElementById('report').onload = () => {
  const doc = document.getElementById('report').contentDocument;
  const problems = [];
  const root = doc.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    problems.push('the page overflows horizontally: ' + root.scrollWidth + ' px in ' + root.clientWidth);
  }
  const figures = doc.querySelectorAll('figure');
  figures.forEach(figure => {
    const svg = figure.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : null;
    if (!box || box.width < 10 || box.height < 10) {
      problems.push('chart ' + figure.id + ' has no box');
    } else if (box.right > root.clientWidth + 1) {
      problems.push('chart ' + figure.id + ' runs past the page edge');
    }
  });
  let cells = 0;
  doc.querySelectorAll('table:not(.details) td').forEach(td => {
    cells++;
    const range = doc.createRange();
    range.selectNodeContents(td);
    const lines = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
    if (lines.size > 1) {
      problems.push('a table cell wraps: "' + td.textContent + '"');
    }
  });
  document.getElementById('verdict').textContent =
    'charts=' + figures.length + ' cells=' + cells + '\n' + problems.join('\n');
};
</script></body></html>
EOF
verdict=$(run_browser --allow-file-access-from-files --virtual-time-budget=15000 \
  --dump-dom "file://$work/check.html" |
  sed -n '/<pre id="verdict">/,/<\/pre>/p' | sed -e 's/<[^>]*>//g' -e 's/&quot;/"/g' -e 's/&amp;/\&/g')
summary=$(head -n1 <<<"$verdict")
problems=$(tail -n +2 <<<"$verdict" | sed '/^$/d')
case $summary in
  charts=*) echo "layout: $summary" ;;
  *) echo "the layout check did not run: ${summary:-no output}" >&2; exit 1 ;;
esac
if [[ -n $problems ]]; then
  echo "LAYOUT PROBLEMS in $page:" >&2
  echo "$problems" >&2
  exit 1
fi
echo "layout ok: no overflow, every chart drawn, no table cell wrapped"
