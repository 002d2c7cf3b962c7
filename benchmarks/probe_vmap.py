"""Benchmark of meta-gradient probe sampling: one vmapped call vs a Python loop, and memory per K.

Prints one JSON line per measurement:

* ``{"kind": "vmap", ...}``: M samples in one :func:`mgrl.probe.sample_meta_gradients` call (what
  ``run_probe`` does);
* ``{"kind": "map", ...}``: the same with ``samples_per_batch=1`` (a compiled sequential loop);
* ``{"kind": "loop", ...}``: M Python calls of a jitted single-sample ``agent.meta_gradient``;
* ``{"kind": "memory", ...}``: XLA's compiled memory analysis of a sampler, with and without
  ``meta.remat``. ``estimated_peak_bytes`` = arguments + outputs + temporaries - aliased, an upper
  bound of live buffers; XLA's own ``peak_memory_in_bytes`` is reported as ``xla_peak_bytes``
  (on CPU it omits temporaries and is not meaningful).

Times are the best of ``--repeats`` runs after compilation (compile time reported separately, the
persistent compilation cache is not used). Usage::

    python benchmarks/probe_vmap.py            # K in 1, 2, 4, 8; M in 16, 32
    python benchmarks/probe_vmap.py --quick    # K in 1, 4; map and remat at M = 16 only (< 2 min)
    python benchmarks/probe_vmap.py --budget   # the probe of tests/test_probe.py, end to end

``--budget`` times ``run_probe`` on the tiny config of tests/test_probe.py (M = 16 samples at
K in {1, 2, 4} for ``last`` and ``uniform``, from a cold start of this process, compilation
included) and prints ``{"kind": "budget", "probe_s": ..., "within_budget": probe_s < 60}``: the
probe's one-minute target, measured here rather than asserted in a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp

from mgrl import probe
from mgrl.config import ExperimentConfig, SchemeConfig, config_from_dict
from mgrl.estimators import scheme_weights
from mgrl.train import make_agent


def small_config(remat: bool = False) -> ExperimentConfig:
    """A 6x6 board with 8 environments and the default network (config.yaml), T = 8."""
    return config_from_dict({
        "name": "bench",
        "horizons": [1],
        "env": {"num_rows": 6, "num_cols": 6, "time_limit": 100, "num_envs": 8,
                "rollout_length": 8},
        "network": {"conv_channels": [16, 16], "kernel_size": 2, "policy_hidden": [32],
                    "value_hidden": [32]},
        "agent": {"optimizer": "adam", "learning_rate": 1e-3},
        "meta": {"learn": ["gamma"], "remat": remat},
        "probe": {"reference_horizon": 1},
    })


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best


def memory_stats(compiled) -> dict:
    stats = compiled.memory_analysis()
    if stats is None:  # some backends do not report
        return {"estimated_peak_bytes": None}
    return {
        "estimated_peak_bytes": int(stats.argument_size_in_bytes + stats.output_size_in_bytes
                                    + stats.temp_size_in_bytes - stats.alias_size_in_bytes),
        "temp_bytes": int(stats.temp_size_in_bytes),
        "argument_bytes": int(stats.argument_size_in_bytes),
        "xla_peak_bytes": int(getattr(stats, "peak_memory_in_bytes", -1)),
    }


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def probe_budget(budget_s: float = 60.0) -> None:
    """Train the tiny a2c run of tests/test_probe.py and time its probe (compilation included)."""
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_probe import SEED, probe_config  # the test's own config

    from mgrl.train import run_training

    cfg = probe_config()
    with tempfile.TemporaryDirectory() as root:
        run_training(cfg, 1, "a2c", [0, 1], Path(root) / "run", progress=False)
        t = time.perf_counter()
        _, summary = probe.run_probe(cfg, Path(root) / "run", SEED, Path(root) / "out")
        seconds = time.perf_counter() - t
    emit({"kind": "budget", "device": jax.devices()[0].device_kind, "cpu_count": os.cpu_count(),
          "cells": len(summary), "num_samples": cfg.probe.num_samples,
          "horizons": list(cfg.horizons), "probe_s": round(seconds, 2), "budget_s": budget_s,
          "within_budget": seconds < budget_s})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K in {1, 4} only (< 2 minutes)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (3; quick: 2)")
    parser.add_argument("--budget", action="store_true",
                        help="time run_probe on the test suite's tiny probe config (target < 60 s)")
    args = parser.parse_args()
    if args.budget:
        return probe_budget()
    args.repeats = args.repeats or (2 if args.quick else 3)
    horizons = (1, 4) if args.quick else (1, 2, 4, 8)
    sample_counts = (16, 32)

    cfg = small_config()
    agents = {False: make_agent(cfg), True: make_agent(small_config(remat=True))}
    state = jax.jit(agents[False].init)(jax.random.PRNGKey(0))
    base = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
            "cpu_count": os.cpu_count(), "board": "6x6",
            "num_envs": cfg.env.num_envs, "rollout_length": cfg.env.rollout_length}

    steps_per_sample = cfg.env.rollout_length * cfg.env.num_envs

    def compile_sampler(remat: bool, keys, weights, samples_per_batch=None):
        t = time.perf_counter()
        compiled = probe.sample_meta_gradients.lower(
            agents[remat], state, keys, weights, samples_per_batch=samples_per_batch).compile()
        return compiled, time.perf_counter() - t

    for K in horizons:
        weights = jnp.asarray(scheme_weights(SchemeConfig("last"), K), jnp.float32)
        agent = agents[False]
        single = jax.jit(lambda s, key, w, agent=agent: agent.meta_gradient(s, key, w)[0])
        t = time.perf_counter()
        single_compiled = single.lower(state, jax.random.PRNGKey(0), weights).compile()
        single_compile_s = time.perf_counter() - t
        for M in sample_counts:
            first = M == sample_counts[0]
            keys = jax.random.split(jax.random.PRNGKey(K), M)
            record = dict(base, horizon=K, num_samples=M)
            # run_probe's sampler (one vmap) at both M; the sequential map at the first M only
            # in quick mode; remat changes only memory, so it is compiled, not run.
            variants = [("vmap", None, False)] + ([("vmap", None, True)] if first else [])
            if first or not args.quick:
                variants.append(("map", 1, False))
            times = {}
            for kind, per_batch, remat in variants:
                compiled, compile_s = compile_sampler(remat, keys, weights, per_batch)
                emit(dict(record, kind="memory", sampler=kind, remat=remat,
                          compile_s=round(compile_s, 2), **memory_stats(compiled)))
                if remat:
                    continue
                times[kind] = best_of(lambda: compiled(state, keys, weights), args.repeats)
                emit(dict(record, kind=kind, compile_s=round(compile_s, 2),
                          run_s=round(times[kind], 4),
                          env_steps_per_s=round(M * K * steps_per_sample / times[kind])))
            times["loop"] = best_of(
                lambda: [single_compiled(state, keys[m], weights) for m in range(M)], args.repeats)
            emit(dict(record, kind="loop", compile_s=round(single_compile_s, 2),
                      run_s=round(times["loop"], 4),
                      env_steps_per_s=round(M * K * steps_per_sample / times["loop"]),
                      vmap_speedup_over_loop=round(times["loop"] / times["vmap"], 2)))


if __name__ == "__main__":
    main()
