#!/usr/bin/env bash
# Re-make the README's bad-vs-good pictures with `actscope compare`: a plain ReLU CNN at lr 0.9
# (no BatchNorm, constant lr) against the default recipe, both on the first 10,000 MNIST images
# for 2 epochs. Writes docs/images/compare.png (a screenshot of the top of compare.html, needs
# Chromium: Debian `apt-get install -y chromium`, or CHROMIUM=/path/to/chrome) and the page's
# own figures: compare_metrics.png, compare_histograms.png, compare_dead_share.png.
# Then the loggers' pictures: tensorboard.png (a Lightning fit's TensorBoard with actscope's
# scalars: lightning_tensorboard.py, `tensorboard` on a free localhost port, Chromium) and
# notebook.png (a notebook cell's output: a Watch's _repr_html_, once report/ provides it).
# Usage: docs/images/make_images.sh [MNIST_DIR]      ONLY=loggers: the loggers' pictures only
set -euo pipefail
cd "$(dirname "$0")/../.."
data=$(cd "${1:-${ACTSCOPE_DATA:-../shared/data/mnist}}" && pwd)
py=${PYTHON:-.venv/bin/python}
case $py in /*) ;; *) py="$PWD/$py" ;; esac  # the compare step runs inside the temp folder
chromium=${CHROMIUM:-chromium}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ ${ONLY:-all} != loggers ]]; then
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
fi

# ---- the loggers' pictures ------------------------------------------------------------------
shot() {  # URL PNG: a headless Chromium screenshot, 1400x900
    "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$(mktemp -d -p "$tmp")" --window-size=1400,900 \
        --virtual-time-budget=15000 --screenshot="$2" "$1" 2>/dev/null
}
PYTHONPATH=$PWD/src $py docs/images/lightning_tensorboard.py "$data" "$tmp/tb" 2>/dev/null
port=$($py -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
tensorboard=${TENSORBOARD:-$(dirname "$py")/tensorboard}
"$tensorboard" --logdir "$tmp/tb" --host 127.0.0.1 --port "$port" >"$tmp/tb.log" 2>&1 &
tb_pid=$!
trap 'kill $tb_pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 1; done
# The SCALARS dashboard (SVG charts: the TIME SERIES one needs WebGL), filtered on actscope/.
shot "http://127.0.0.1:$port/#scalars&tagFilter=actscope" "$tmp/tensorboard.png"
PYTHONPATH=$PWD/src $py - "$tmp" <<'EOF'
import sys
from pathlib import Path

import torch
from torch import nn

import actscope

tmp = Path(sys.argv[1])
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.3)
with actscope.watch(model, optimizer=opt) as w:
    for _ in range(200):
        loss = model(torch.randn(64, 32)).pow(2).mean()
        loss.backward(); opt.step(); opt.zero_grad(); w.step(loss=loss)
if not hasattr(w, "_repr_html_"):
    print("notebook.png: skipped, Watch has no _repr_html_ yet (report/ provides it)")
    raise SystemExit
cell = ('<div style="font-family:monospace;color:#303f9f;margin:8px">In [3]: '
        '<span style="color:#000">w</span></div>'
        f'<div style="margin:0 8px 0 60px">{w._repr_html_()}</div>')
(tmp / "cell.html").write_text(f"<!doctype html><meta charset=utf-8><body>{cell}</body>")
EOF
if [[ -f $tmp/cell.html ]]; then shot "file://$tmp/cell.html" "$tmp/notebook.png"; fi
$py - "$tmp" <<'EOF'
import sys
from pathlib import Path
from PIL import Image

tmp, out = Path(sys.argv[1]), Path("docs/images")
for name in ("tensorboard", "notebook"):
    if (tmp / f"{name}.png").is_file():
        shot = Image.open(tmp / f"{name}.png").convert("RGB")
        shot = shot.resize((1000, round(shot.height * 1000 / shot.width)), Image.LANCZOS)
        shot.quantize(256, method=Image.Quantize.FASTOCTREE).save(out / f"{name}.png",
                                                                  optimize=True)
        print(f"{out / name}.png: {(out / f'{name}.png').stat().st_size // 1024} KB")
EOF
