#!/usr/bin/env bash
# Re-make the README's bad-vs-good pictures with `actscope compare`: a plain ReLU CNN at lr 0.9
# (no BatchNorm, constant lr) against the default recipe, both on the first 10,000 MNIST images
# for 2 epochs. Writes docs/images/compare.png (a screenshot of the top of compare.html, needs
# Chromium: Debian `apt-get install -y chromium`, or CHROMIUM=/path/to/chrome) and the page's
# own figures: compare_metrics.png, compare_histograms.png, compare_dead_share.png.
# Usage: docs/images/make_images.sh [MNIST_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
data=$(cd "${1:-${ACTSCOPE_DATA:-../shared/data/mnist}}" && pwd)
py=${PYTHON:-.venv/bin/python}
case $py in /*) ;; *) py="$PWD/$py" ;; esac  # the compare step runs inside the temp folder
chromium=${CHROMIUM:-chromium}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$py -m actscope fit --data "$data" --limit 10000 --epochs 2 --lr 0.9 --norm none --act relu \
    --sched constant --no-progress --out "$tmp/plain-relu-lr0.9"
$py -m actscope fit --data "$data" --limit 10000 --epochs 2 --no-progress \
    --out "$tmp/default-recipe"
# From inside the temp folder, so the page names the runs, not /tmp/tmp.XXXX paths.
(cd "$tmp" && "$py" -m actscope compare plain-relu-lr0.9 default-recipe --out cmp)
"$chromium" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-dev-shm-usage --hide-scrollbars \
    --user-data-dir="$tmp/profile" --window-size=1100,2900 --virtual-time-budget=5000 \
    --screenshot="$tmp/shot.png" "file://$tmp/cmp/compare.html" 2>/dev/null
# Small files for the README: palette PNGs (< 300 KB each), the screenshot scaled to 900 px.
$py - "$tmp" <<'EOF'
import base64, re, sys
from pathlib import Path
from PIL import Image

tmp, out = Path(sys.argv[1]), Path("docs/images")
shot = Image.open(tmp / "shot.png").convert("RGB")
shot = shot.resize((900, round(shot.height * 900 / shot.width)), Image.LANCZOS)
octree = Image.Quantize.FASTOCTREE  # keeps viridis' colours (median cut shifts yellow)
shot.quantize(256, method=octree).save(out / "compare.png", optimize=True)
page = (tmp / "cmp" / "compare.html").read_text()
figs = dict(re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', page))
for alt, name in (("metrics", "compare_metrics"), ("histograms 1", "compare_histograms"),
                  ("dead share per layer", "compare_dead_share")):
    (tmp / f"{name}.png").write_bytes(base64.b64decode(figs[alt]))
    image = Image.open(tmp / f"{name}.png").convert("RGB")
    image.quantize(256, method=octree).save(out / f"{name}.png", optimize=True)
for p in sorted(out.glob("compare*.png")):
    print(f"{p}: {p.stat().st_size // 1024} KB")
    assert p.stat().st_size < 300_000, p
EOF
