#!/bin/bash
# usage: run.sh NAME CFG [train args...]
name=$1; cfg=$2; shift 2
cd "$(dirname "$0")/../.." && . .venv/bin/activate
mkdir -p results/calibration
export MGRL_JAX_CACHE=.jax_cache
start=$(date +%s.%N)
/usr/bin/time -f "WALL %e s  USER %U s  SYS %S s  MAXRSS %M KB" python -m mgrl train --config $cfg "$@" --out results/calibration/$name --progress lines > results/calibration/$name.log 2>&1
rc=$?
echo "rc=$rc load=$(cat /proc/loadavg)" >> results/calibration/$name.log
tail -2 results/calibration/$name.log
python docs/calibration/summ.py results/calibration/$name
