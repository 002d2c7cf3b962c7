"""Reverse- vs forward-mode meta-gradients: time per meta-gradient and compiled memory per K.

    python benchmarks/meta_gradient_modes.py [--horizons 1 2 4 8 16 32 64] [--repeats 5]
                                             [--config config.yaml]

For each K and mode (``meta.gradient: reverse | forward``) at the config's size (default: the
default experiment, 6x6, 32 environments x 8 steps) it compiles one meta-gradient of the ``last``
scheme from a freshly initialised state and prints one JSON line: compile seconds, the best of
``--repeats`` calls (seconds per meta-gradient, i.e. per meta-step's differentiation of K inner
updates), and XLA's compiled memory (arguments + outputs + temporaries - aliased bytes). Then the
probe's estimate samples of one key: every (K, scheme) of the config from one forward pass at
K_max (``outer_loss_jacobian``) against one reverse pass per distinct (K, scheme), as the probe
does with ``meta.gradient: reverse``. CPU numbers depend on the machine; compare modes on one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import jax.numpy as jnp

from mgrl.config import load_config
from mgrl.estimators import exists_at, scheme_weights
from mgrl.runs import scheme_aliases
from mgrl.train import make_agent
from probe_vmap import best_of  # this folder is on sys.path when the script runs


def compiled_bytes(compiled) -> int:
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
               - m.alias_size_in_bytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cfg = load_config(args.config)
    agents = {mode: make_agent(dataclasses.replace(cfg, meta=dataclasses.replace(
        cfg.meta, gradient=mode, remat=False))) for mode in ("reverse", "forward")}
    state = jax.jit(agents["reverse"].init)(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    for horizon in args.horizons:
        weights = jnp.asarray(scheme_weights(cfg.schemes["last"], horizon), jnp.float32)
        for mode, agent in agents.items():
            start = time.perf_counter()
            compiled = jax.jit(lambda s, k, w, a=agent: a.meta_gradient(s, k, w)[0]).lower(
                state, key, weights).compile()
            compile_s = time.perf_counter() - start
            seconds = best_of(lambda c=compiled: c(state, key, weights), args.repeats)
            print(json.dumps({"kind": "meta_gradient", "mode": mode, "horizon": horizon,
                              "seconds": round(seconds, 5), "compile_s": round(compile_s, 2),
                              "bytes": compiled_bytes(compiled)}), flush=True)

    # The probe's estimate samples of one key, every (K, scheme) of the config.
    k_max = max(cfg.horizons)
    aliases = scheme_aliases(cfg)
    distinct = [(h, s) for h in cfg.horizons for s, sc in cfg.schemes.items()
                if exists_at(sc, h) and (h, s) not in aliases]
    reverse = agents["reverse"]
    programs = {h: jax.jit(lambda s, k, w: reverse.meta_gradient(s, k, w)[0]) for h in cfg.horizons}
    weights = {(h, s): jnp.asarray(scheme_weights(cfg.schemes[s], h), jnp.float32) for h, s in distinct}
    for (h, s), w in weights.items():
        jax.block_until_ready(programs[h](state, key, w))  # compile
    one_pass = jax.jit(lambda s, k: agents["forward"].outer_loss_jacobian(s, k, k_max)[0])
    jax.block_until_ready(one_pass(state, key))
    per_estimator = best_of(lambda: [programs[h](state, key, w) for (h, _), w in weights.items()],
                            args.repeats)
    forward = best_of(lambda: one_pass(state, key), args.repeats)
    print(json.dumps({"kind": "probe_key", "estimators": len(distinct), "k_max": k_max,
                      "reverse_per_estimator_s": round(per_estimator, 5),
                      "forward_one_pass_s": round(forward, 5),
                      "speedup": round(per_estimator / forward, 3)}), flush=True)


if __name__ == "__main__":
    main()
