"""Metrics of a few short training runs, to compare two versions of the training code bit for bit.

    XLA_FLAGS=--xla_force_host_platform_device_count=1 python benchmarks/training_fingerprint.py out.json [--default]

(XLA_FLAGS set: the pipeline's XLA defaults instead of the tests' cheaper compile flags.)

Runs tests/conftest.py's tiny config (K=2 last with 2 seeds, K=2 uniform, a2c, K=3 lambda_0.5)
for 2 intervals each and, with --default, the default config.yaml (8 inner updates per interval)
at K=4 last/uniform and a2c; writes every interval metric of the last interval and the sum of each
parameter leaf to out.json. Run it in two checkouts under the same XLA_FLAGS and compare the files:
equal trajectories give equal parameters and meta-parameters, e.g. to check that a change to how
the training program is built leaves the trajectories unchanged.
"""

import dataclasses
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import tiny_config  # noqa: E402  (also sets the tests' compilation cache and flags)

from mgrl.config import load_config  # noqa: E402
from mgrl.train import make_train  # noqa: E402


def main(out_path: str, default: bool) -> None:
    tiny = tiny_config()
    cases = [("tiny", tiny, 2, "last", [0, 1], 2), ("tiny", tiny, 2, "uniform", [0], 2),
             ("tiny", tiny, 1, "a2c", [0], 2), ("tiny", tiny, 3, "lambda_0.5", [1], 2)]
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


if __name__ == "__main__":
    main(sys.argv[1], "--default" in sys.argv[2:])
