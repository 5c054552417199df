#!/usr/bin/env bash
# Re-make the README's telemetry pictures: a plain ReLU CNN at lr 0.9 and the default recipe,
# both on the first 10,000 MNIST images for 2 epochs. Usage: docs/images/make_images.sh [MNIST_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-${ACTSCOPE_DATA:-../shared/data/mnist}}
py=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$py -m actscope fit --data "$data" --limit 10000 --epochs 2 --lr 0.9 --norm none --act relu \
    --sched constant --no-progress --out "$tmp/bad"
$py -m actscope fit --data "$data" --limit 10000 --epochs 2 --no-progress --out "$tmp/good"
for run in bad good; do
  for plot in hist_heatmap stats dead_share; do
    cp "$tmp/$run/plots/$plot.png" "docs/images/${run}_$plot.png"
  done
done
