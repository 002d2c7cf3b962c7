"""Metrics of a few short training runs, to compare two versions of the training code bit for bit.

    XLA_FLAGS=--xla_force_host_platform_device_count=1 python benchmarks/training_fingerprint.py out.json [--default]

(XLA_FLAGS set: the pipeline's XLA defaults instead of the tests' cheaper compile flags.)

Runs tests/conftest.py's tiny config (K=2 last with 2 seeds, K=2 uniform, a2c, K=3 lambda_0.5,
K=2 bmg with the inner target and L=2, outer critic on; K=1 bmg with the outer target and L=2) for 2 intervals each and, with --default, the default config.yaml (8 inner updates per interval)
at K=4 last/uniform and a2c; writes every interval metric of the last interval and the sum of each
parameter leaf to out.json (``--compare old.json new.json`` compares two such files). Run it in
two checkouts under the same XLA_FLAGS and compare the files:
equal trajectories give equal parameters and meta-parameters, e.g. to check that a change to how
the training program is built leaves the trajectories unchanged.
"""

import dataclasses
import json
import typing
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import tiny_config  # noqa: E402  (also sets the tests' compilation cache and flags)

from mgrl.config import SchemeConfig, load_config  # noqa: E402
from mgrl.train import make_train  # noqa: E402


def main(out_path: str, default: bool) -> None:
    tiny = tiny_config()
    cases = [("tiny", tiny, 2, "last", [0, 1], 2), ("tiny", tiny, 2, "uniform", [0], 2),
             ("tiny", tiny, 1, "a2c", [0], 2), ("tiny", tiny, 3, "lambda_0.5", [1], 2)]
    # bmg with the inner target (a version without the setting has only that one) and an outer
    # critic: the look-ahead, the KL and the outer critic's TD term are all in the trajectory.
    inner = {"bootstrap_target": "inner"} if "bootstrap_target" in typing.get_type_hints(
        SchemeConfig) else {}
    bmg = dataclasses.replace(tiny, schemes={"bmg": SchemeConfig("bmg", bootstrap_steps=2, **inner)},
                              agent=dataclasses.replace(tiny.agent, outer_critic=True,
                                                        outer_value_coef=0.5))
    cases.append(("tiny", bmg, 2, "bmg", [0], 2))
    # bmg with the published (outer) target, L = 2: the look-ahead with its own optimiser state
    outer = dataclasses.replace(tiny, schemes={"bmg_outer": SchemeConfig("bmg", bootstrap_steps=2)})
    cases.append(("tiny", outer, 1, "bmg_outer", [1], 2))
    if default:
        cfg = load_config(Path(__file__).resolve().parents[1] / "config.yaml")
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train,
                                                                 inner_updates_per_interval=8))
        cases += [("default", cfg, 4, "last", [0], 2), ("default", cfg, 4, "uniform", [0], 2),
                  ("default", cfg, 1, "a2c", [0], 1)]
    out = {}
    for name, cfg, horizon, scheme, seeds, intervals in cases:
        trainer = make_train(cfg, horizon, scheme)
        state = trainer.init(jnp.asarray(seeds))
        for _ in range(intervals):
            state, metrics = trainer.run_interval(state)
        metrics = jax.device_get(metrics)
        out[f"{name}-K{horizon}-{scheme}"] = {k: np.asarray(v).tolist() for k, v in metrics.items()}
        out[f"{name}-K{horizon}-{scheme}-params"] = [
            float(np.asarray(leaf, np.float64).sum()) for leaf in jax.tree.leaves(state.params)]
    Path(out_path).write_text(json.dumps(out, sort_keys=True))
    print(f"wrote {len(out)} entries to {out_path}")


def compare(old_path: str, new_path: str) -> None:
    """Exit 1 unless every metric and parameter sum the two files share is equal (a metric that
    only one version logs is listed, not compared)."""
    old, new = json.loads(Path(old_path).read_text()), json.loads(Path(new_path).read_text())
    differ = []
    for case in sorted(set(old) & set(new)):
        a, b = old[case], new[case]
        if isinstance(a, dict):
            only = sorted(set(a) ^ set(b))
            if only:
                print(f"{case}: logged by one version only: {only}")
            differ += [f"{case}/{k}" for k in sorted(set(a) & set(b))
                       if not k.startswith("perf/") and a[k] != b[k]]
        elif a != b:
            differ.append(case)
    print(f"{len(set(old) & set(new))} shared cases; cases in one file only: "
          f"{sorted(set(old) ^ set(new))}")
    print("identical" if not differ else f"DIFFERENT: {differ}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], "--default" in sys.argv[2:])
