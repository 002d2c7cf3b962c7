#!/usr/bin/env bash
# Rebuild an experiment and refresh the copies under docs/ that the README shows:
#   bash docs/update.sh                           the default experiment (config.yaml) -> docs/
#   bash docs/update.sh config/estimators.yaml    the estimators experiment -> docs/estimators/
#   bash docs/update.sh --no-replicate [config]   without the replication on disjoint seeds
#   bash docs/update.sh --from-runs [config]      every table and figure again from the training
#       and probe runs already under results/<name>/, which are not rerun even if their code
#       changed: only after a change that leaves their numbers unchanged
#       (benchmarks/training_fingerprint.py compares two versions bit for bit)
# (from the repository root, in the installed virtualenv)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(all replicate)
from_runs=0
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --no-replicate) targets=(all) ;;
    --from-runs) from_runs=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
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
if (( from_runs )); then  # mark the existing runs, then the probes, up to date (missing: an error)
  for rule in train probe; do
    snakemake --cores 1 --touch "${targets[@]}" --until "$rule" "${args[@]}"
  done
fi
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
  cp "$results"/tables/{claims_replicated.md,claims_replicated.csv,seeds_needed.md,seeds_needed.csv} "$dest/"
fi
if [[ -e "$results/tables/reproduction.md" ]]; then  # beside the authors' runs (reproduction)
  cp "$results"/tables/{reproduction.md,reproduction.csv,reproduction_gaps.csv} "$dest/"
  if [[ -e "$results/tables/reproduction_replicated.md" ]]; then
    cp "$results/tables/reproduction_replicated.md" "$dest/"
    cp "$results/replicate/tables/reproduction.md" "$dest/reproduction_replicate.md"
  fi
fi
if [[ -e "$results/tables/intervention.md" ]]; then
  cp "$results"/tables/{intervention.md,intervention.csv} "$dest/"
fi
echo "$dest/ refreshed; paste docs/claims.md into README.md and the E-rows of docs/estimators/claims.md into docs/estimators.md (tests/test_readme.py checks both)"
