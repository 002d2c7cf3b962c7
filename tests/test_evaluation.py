"""Evaluation episodes (train.eval_episodes): a greedy evaluation equals a by-hand loop over
Jumanji's own Snake, and turning evaluation on leaves training bit for bit unchanged."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from conftest import tiny_config
from mgrl.config import NetworkConfig
from mgrl.env import make_env
from mgrl.evaluation import evaluation_key, first_episode_returns, make_evaluator
from mgrl.networks import make_actor_critic
from mgrl.train import run_training


def test_greedy_evaluation_equals_a_by_hand_loop_over_jumanji():
    """Three 5x5 episodes of a fixed random network acting greedily: the evaluator's returns are
    the rewards a plain Python loop over jumanji's reset and step collects until each episode's
    end, from the same reset keys."""
    from jumanji.environments import Snake

    env_cfg = tiny_config(env={"num_rows": 5, "num_cols": 5, "time_limit": 30}).env
    env = make_env(env_cfg)
    network = make_actor_critic(NetworkConfig((4,), 2, (8,), (8,)))
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 5, 5)), jnp.ones((1, 4), bool))
    key = jax.random.PRNGKey(7)

    def greedy(observation, mask, _):
        return jnp.argmax(network.apply(params, observation, mask)[0], axis=-1).astype(jnp.int32)

    returns, ended = jax.jit(lambda k: first_episode_returns(env, greedy, k, 3, 30))(key)
    assert bool(ended.all())
    snake = Snake(num_rows=5, num_cols=5, time_limit=30)
    reset, step = jax.jit(snake.reset), jax.jit(snake.step)  # jumanji's own functions, compiled
    act = jax.jit(lambda obs: jnp.argmax(network.apply(
        params, obs.grid[None].astype(jnp.float32), obs.action_mask[None])[0][0]).astype(jnp.int32))
    reset_keys = jax.random.split(jax.random.split(key)[0], 3)
    by_hand = []
    for b in range(3):
        state, ts = reset(reset_keys[b])
        total = 0.0
        for _ in range(30):
            state, ts = step(state, act(ts.observation))
            total += float(ts.reward)
            if bool(ts.last()):
                break
        by_hand.append(total)
    np.testing.assert_array_equal(np.asarray(returns), np.asarray(by_hand, np.float32))
    evaluate = jax.jit(make_evaluator(env, network, 3, 30))(params, key)
    assert float(evaluate["eval/return_greedy"]) == np.float32(np.mean(by_hand))


def test_evaluation_leaves_training_bit_identical(tiny, tmp_path):
    off = run_training(tiny, 2, "uniform", [0], tmp_path / "off", progress=False)
    on_cfg = tiny_config(train={"eval_episodes": 3, "eval_max_steps": 20})
    on = run_training(on_cfg, 2, "uniform", [0], tmp_path / "on", progress=False)
    evaluation = ["eval/return_greedy", "eval/return_sampled"]
    assert off[evaluation].isna().all().all() and on[evaluation].notna().all().all()
    kept = [c for c in off.columns if c not in evaluation and not c.startswith("perf/")
            and c != "config_hash"]
    for column in kept:
        np.testing.assert_array_equal(on[column].to_numpy(), off[column].to_numpy(), column)
    assert evaluation_key(0, 1).tolist() != evaluation_key(0, 2).tolist()
