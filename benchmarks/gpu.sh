#!/usr/bin/env bash
# The first GPU run measures everything at once, on one GPU, in under 10 minutes:
#   1. env-steps/s of A2C and MG in the authors' regime (512 environments) with 1 and 8 seeds
#      vmapped in one program (benchmarks/gpu_throughput.py, one JSON line each);
#   2. every program of config/authors_snake_full.yaml (the five agents' training with 10 seeds
#      vmapped, the sensitivity run, the probe, every analysis rule and the comparison with the
#      authors' runs) for 2 intervals of 146 updates, through the real Snakefile, under
#      results/gpu_check/, with the jobs' wall times (benchmarks/job_times.py).
# Usage, from the checkout with the GPU install (README, "On a GPU"): bash benchmarks/gpu.sh [OUT]
# OUT (default results/gpu_check_logs) receives throughput.jsonl and job_times.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-results/gpu_check_logs}"
mkdir -p "$out"
python -c "import jax; d = jax.devices()[0]; print('device:', d.platform, d.device_kind)"
python benchmarks/gpu_throughput.py --seeds 1 8 --updates 146 | tee "$out/throughput.jsonl"
# one GPU job at a time (train and probe ask for the GPU, as profiles/slurm has them do)
snakemake --cores 4 --resources gpu=1 --set-resources train:gpu=1 probe:gpu=1 \
  --configfile config/authors_snake_full.yaml benchmarks/gpu_check.yaml
python benchmarks/job_times.py --experiment gpu_check | tee "$out/job_times.txt"
