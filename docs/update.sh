#!/usr/bin/env bash
# Rebuild an experiment and refresh the copies under docs/ that the README shows:
#   bash docs/update.sh                           the default experiment (config.yaml) -> docs/
#   bash docs/update.sh config/estimators.yaml    the estimators experiment -> docs/estimators/
#   bash docs/update.sh --no-replicate [config]   without the replication on disjoint seeds
# (from the repository root, in the installed virtualenv)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(all replicate)
if [[ "${1:-}" == "--no-replicate" ]]; then
  targets=(all); shift
fi
config="${1:-}"
if [[ -z "$config" ]]; then
  dest=docs; args=()
else
  dest="docs/$(basename "$config" .yaml)"; args=(--configfile "$config")
fi
# the experiment's outputs lie under results/<its config's name>/ (config.yaml: results/default/)
name=$(python - "${config:-config.yaml}" <<'PY'
import sys
from mgrl.config import load_config
print(load_config(sys.argv[1]).name)
PY
)
results="results/$name"
start=$(date +%s)
snakemake --cores 2 "${targets[@]}" "${args[@]}"  # targets first: --configfile takes every word after it
echo "snakemake --cores 2 ${targets[*]} ${args[*]}: $(( $(date +%s) - start )) s wall"
mkdir -p "$dest/figures"
RESULTS="$results" DEST="$dest" python - <<'PY'
import os
from pathlib import Path
from PIL import Image

for png in sorted(Path(os.environ["RESULTS"], "figures").glob("*.png")):
    image = Image.open(png)
    scale = min(1.0, 1920 / image.width)
    image.resize((int(image.width * scale), int(image.height * scale))).save(
        Path(os.environ["DEST"]) / "figures" / png.name, optimize=True)
PY
cp "$results"/tables/{claims.md,claims.csv,learning.csv,estimators.csv,variance_reduction.csv,gamma_sensitivity.csv} "$dest/"
if [[ " ${targets[*]} " == *" replicate "* ]]; then
  cp "$results"/tables/{claims_replicated.md,claims_replicated.csv} "$dest/"
fi
echo "$dest/ refreshed; paste docs/claims.md into README.md and the E-rows of docs/estimators/claims.md into docs/estimators.md (tests/test_readme.py checks both)"
