#!/usr/bin/env bash
# Rebuild the default experiment and refresh the copies under docs/ that the README shows:
#   bash docs/update.sh            (from the repository root, in the installed virtualenv)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
snakemake --cores 2
echo "snakemake --cores 2: $(( $(date +%s) - start )) s wall"
mkdir -p docs/figures
python - <<'PY'
from pathlib import Path
from PIL import Image

for png in sorted(Path("results/figures").glob("*.png")):
    image = Image.open(png)
    scale = min(1.0, 1920 / image.width)
    image.resize((int(image.width * scale), int(image.height * scale))).save(
        Path("docs/figures") / png.name, optimize=True)
PY
cp results/tables/{claims.md,claims.csv,learning.csv,estimators.csv,variance_reduction.csv,gamma_sensitivity.csv} docs/
echo "docs/ refreshed; paste docs/claims.md into README.md's Results section (tests/test_readme.py checks it)"
