"""Learning sanity: A2C and the meta-gradient agents beat the random legal policy.

In a file of its own (the suite's longest test, mostly compute, not compilation) so that
pytest-xdist can run it beside the other files.
"""

from __future__ import annotations

import jax
import numpy as np

from conftest import tiny_config
from mgrl.env import random_policy_stats
from test_train import run_intervals


def test_agents_learn_clearly_better_than_random():
    """A2C and meta-gradient agents beat the random legal policy on a 6x6 board in 400 updates.

    Measured (seeds 0-2, tests/test_learning.py's settings): the random policy earns 0.017 reward
    per step; after 350-400 inner updates every agent earns 0.13-0.17, so the 3x threshold (0.051)
    has a margin of about 2.5x, while an agent that does not learn stays near 0.017."""
    cfg = tiny_config(
        horizons=[2],
        env={"num_rows": 6, "num_cols": 6, "time_limit": 100, "num_envs": 32, "rollout_length": 8},
        network={"conv_channels": [16, 16], "policy_hidden": [32], "value_hidden": [32]},
        agent={"optimizer": "adam", "learning_rate": 1e-3, "gamma_init": 0.9},
        meta={"learn": ["gamma"]},
        train={"num_intervals": 1, "inner_updates_per_interval": 50},
        probe={"reference_horizon": 2},
    )
    random_rate = random_policy_stats(cfg.env, jax.random.PRNGKey(0), 2000)["reward_per_step"]
    for horizon, scheme in [(1, "a2c"), (2, "last"), (2, "uniform")]:
        _, _, out = run_intervals(cfg, horizon, scheme, [0], 8)  # 400 inner updates, 102k steps
        learned = float(np.mean([m["train/reward_per_step"][0] for m in out[-2:]]))
        print(f"{scheme} K={horizon}: reward/step {learned:.3f} vs random {random_rate:.3f}")
        assert learned > 3 * random_rate, (scheme, horizon, learned, random_rate)
