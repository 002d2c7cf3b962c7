"""Environment steps per second of the authors' regime (config/authors_snake_full.yaml: 512
environments, their networks and optimisers) for A2C and MG, with 1 and 8 seeds vmapped in one
program, on whatever device JAX finds (run by benchmarks/gpu.sh on one GPU).

    python benchmarks/gpu_throughput.py [--config config/authors_snake_full.yaml]
        [--schemes a2c mg] [--seeds 1 8] [--updates 146] [--repeats 3]

Per (scheme, seeds): the interval program (``--updates`` inner updates, one lax.scan) is compiled
first (``compile_s``, never part of a timing), run once untimed, then ``--repeats`` times;
``env_steps_per_s`` = environment steps of one call, all seeds together, validation rollouts
included (``env_steps_per_interval`` x seeds) / the median wall time of a call. One JSON line per
case on standard output.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import jax
import jax.numpy as jnp

from mgrl.config import load_config
from mgrl.train import make_train


def measure(cfg, scheme: str, seeds: int, repeats: int) -> dict:
    trainer = make_train(cfg, 1, scheme, reuse=False)
    state = trainer.init(jnp.arange(seeds))
    start = time.perf_counter()
    run = trainer.executable(state)
    compile_s = time.perf_counter() - start
    state, metrics = run(state, trainer.weights)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = run(state, trainer.weights)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    steps = trainer.env_steps_per_interval * seeds
    return {"name": "gpu_throughput", "scheme": scheme, "seeds": seeds,
            "num_envs": cfg.env.num_envs, "updates_per_call": cfg.train.inner_updates_per_interval,
            "device": str(jax.devices()[0].device_kind), "compile_s": round(compile_s, 2),
            "call_s": round(statistics.median(times), 4),
            "env_steps_per_s": round(steps / statistics.median(times))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/authors_snake_full.yaml")
    parser.add_argument("--schemes", nargs="+", default=["a2c", "mg"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--updates", type=int, default=146, help="inner updates per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = load_config(args.config)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, inner_updates_per_interval=args.updates))
    for scheme in args.schemes:
        for seeds in args.seeds:
            print(json.dumps(measure(cfg, scheme, seeds, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
