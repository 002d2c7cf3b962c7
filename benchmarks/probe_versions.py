"""The whole probe of one seed, old code vs this checkout, at equal settings.

Runs ``python -m mgrl probe`` twice on the same a2c run and config: once with the source of an
older commit (checked out into a temporary git worktree, put first on PYTHONPATH) and once with
this checkout's. Both read the same checkpoints (the training code, and so the checkpoints' code
hash, must be the same in both) and the same probe settings (horizons, schemes, K_ref, M, M_ref).
Prints one JSON line per code version::

    {"kind": "probe_version", "code": "old" | "new", "commit": ..., "wall_s": ...,
     "per_state_s": {interval: seconds}, ...}

``per_state_s`` sums the probe's own timings of a state (its log lines "... interval N ... in Xs":
sampling only, compilation included in the first state, loading and statistics not), ``wall_s``
is the whole process. Usage::

    python benchmarks/probe_versions.py --old 35b9293 --run results/default/runs/K1/a2c/seed0 \
        --seed 0 [--config config.yaml] [--jsonl benchmarks/probe_versions.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMING = re.compile(r"interval (\d+)\b.* in ([0-9.]+)s")


def run_probe(src: Path, config: str, run: str, seed: int, out: Path) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(src))
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mgrl", "probe", "--config", config, "--run", run,
                           "--seed", str(seed), "--out", str(out)],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"probe with {src} failed:\n{done.stderr[-3000:]}")
    per_state: dict[int, float] = defaultdict(float)
    for line in done.stderr.splitlines() + done.stdout.splitlines():
        match = TIMING.search(line)
        if match:
            per_state[int(match.group(1))] += float(match.group(2))
    return wall, {k: round(v, 2) for k, v in sorted(per_state.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="commit of the old probe code")
    parser.add_argument("--run", required=True, help="a2c run folder with checkpoints/")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--jsonl", help="also append the records to this file")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.old], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            for code, src, commit in (("old", tree / "src", args.old), ("new", ROOT / "src", head)):
                wall, per_state = run_probe(src, args.config, args.run, args.seed,
                                            Path(tmp) / f"out_{code}")
                records.append({"kind": "probe_version", "code": code, "commit": commit,
                                "config": args.config, "seed": args.seed, "wall_s": round(wall, 1),
                                "per_state_s": per_state})
                print(json.dumps(records[-1]), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           capture_output=True)
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)


if __name__ == "__main__":
    main()
