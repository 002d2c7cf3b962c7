"""Jumanji's own A2C trainer (``jumanji.training``) on our board, for ``benchmarks/bench.py``.

Builds Jumanji's ``A2CAgent`` from its own ``configs/config.yaml`` + ``env/snake.yaml`` (agent
``a2c``, Adam), sized like ours (``n_steps`` = T, ``total_batch_size`` = B, channels and MLP
widths), on ``VmapAutoResetWrapper(Snake(rows, cols, time_limit))``, and compiles its epoch exactly
as ``jumanji/training/train.py`` runs it (``epoch_fn``: a ``lax.scan`` of ``run_epoch`` under
``jax.pmap``). Its network is one of:

* ``ours``: our architecture from mgrl's own network modules (``mgrl.networks``: separate actor and
  critic torsos of VALID 2x2 convolutions, MLP heads, masked logits) as Jumanji
  ``ActorCriticNetworks``; ``conv_impl`` picks the convolution like ``network.conv_impl``:
  ``xla`` (``hk.Conv2D``, how one writes it for Jumanji) or ``matmul`` (``PatchConv2D``, ours);
* ``stock``: Jumanji's own Snake network (``make_actor_critic_networks_snake``) at the same channel
  and MLP sizes (it differs: first conv stride 2, SAME padding, a step-count input).

Needs the benchmarking venv (``benchmarks/requirements-bench.txt``: omegaconf, hydra, neptune,
rlax, distrax, ...); :func:`unavailable` says why not. Nothing here imports ``jumanji.training`` at
module level, so bench.py imports this module only when it measures the peer.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mgrl.config import ExperimentConfig, NetworkConfig


class Program(NamedTuple):
    """A compiled (pmapped) program of Jumanji's trainer and the training state it runs on."""

    compiled: Any  # jax.stages.Compiled: state -> (state, metrics)
    state: Any  # Jumanji's TrainingState, replicated over one device
    compile_s: float  # lower + XLA compile


def unavailable() -> str | None:
    """None when ``jumanji.training`` imports, else the reason (a missing extra package)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import jumanji.training.setup_train  # noqa: F401
        return None
    except Exception as err:  # ImportError of omegaconf, hydra, neptune, rlax, distrax, ...
        return f"{type(err).__name__}: {err}"


def install_device_put_replicated_shim() -> None:
    """``jumanji.training`` replicates its state with ``jax.device_put_replicated``, which current
    jax no longer has; this puts back the same thing (each leaf stacked once per device)."""
    if not hasattr(jax, "device_put_replicated"):
        def device_put_replicated(x, devices):
            return jax.tree.map(lambda leaf: jax.device_put(jnp.stack([leaf] * len(devices))), x)

        jax.device_put_replicated = device_put_replicated


def ours_as_jumanji_networks(net: NetworkConfig):
    """Our actor-critic, built from mgrl.networks' torso (``net.conv_impl`` selects its
    convolution) and the same MLP heads, as Jumanji ``ActorCriticNetworks``."""
    import haiku as hk
    from jumanji.training.networks.actor_critic import ActorCriticNetworks, FeedForwardNetwork
    from jumanji.training.networks.parametric_distribution import CategoricalParametricDistribution

    from mgrl import networks

    def policy_fn(observation):
        x = observation.grid.astype(jnp.float32)
        logits = hk.nets.MLP([*net.policy_hidden, 4], name="policy")(
            networks._torso(net, "actor_torso")(x))
        return jnp.where(observation.action_mask, logits, networks.MASKED_LOGIT)

    def value_fn(observation):
        x = observation.grid.astype(jnp.float32)
        return hk.nets.MLP([*net.value_hidden, 1], name="value")(
            networks._torso(net, "critic_torso")(x))[..., 0]

    policy = hk.without_apply_rng(hk.transform(policy_fn))
    value = hk.without_apply_rng(hk.transform(value_fn))
    return ActorCriticNetworks(
        policy_network=FeedForwardNetwork(init=policy.init, apply=policy.apply),
        value_network=FeedForwardNetwork(init=value.init, apply=value.apply),
        parametric_action_distribution=CategoricalParametricDistribution(num_actions=4),
    )


def jumanji_config(cfg: ExperimentConfig, updates: int):
    """Jumanji's own configs/config.yaml + env/snake.yaml, agent a2c, sizes set to ours."""
    import jumanji.training
    from omegaconf import OmegaConf

    root = Path(jumanji.training.__file__).parent / "configs"
    jcfg = OmegaConf.load(root / "config.yaml")
    jcfg.pop("defaults")
    jcfg.env = OmegaConf.load(root / "env" / "snake.yaml")
    jcfg.agent = "a2c"
    jcfg.env.training.n_steps = cfg.env.rollout_length
    jcfg.env.training.total_batch_size = cfg.env.num_envs
    jcfg.env.training.num_learner_steps_per_epoch = updates
    jcfg.env.network.num_channels = cfg.network.conv_channels[0]
    jcfg.env.network.policy_layers = list(cfg.network.policy_hidden)
    jcfg.env.network.value_layers = list(cfg.network.value_hidden)
    return jcfg


def agent_and_state(cfg: ExperimentConfig, updates: int, network: str = "ours",
                    conv_impl: str = "xla"):
    """(agent, replicated training state, Jumanji config) of Jumanji's A2C on our board;
    ``network`` is ``ours`` (with ``conv_impl`` ``xla`` or ``matmul``) or ``stock``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from jumanji.environments import Snake
        from jumanji.training.agents.a2c import A2CAgent
        from jumanji.training.setup_train import setup_agent, setup_training_state
        from jumanji.wrappers import VmapAutoResetWrapper
    install_device_put_replicated_shim()
    jcfg = jumanji_config(cfg, updates)
    # setup_env() builds the registered 12x12 Snake-v1; this is the same wrapper on our board.
    env = VmapAutoResetWrapper(Snake(num_rows=cfg.env.num_rows, num_cols=cfg.env.num_cols,
                                     time_limit=cfg.env.time_limit))
    agent = setup_agent(jcfg, env)  # the stock A2CAgent with Jumanji's Snake network
    if network == "ours":
        a2c = jcfg.env.a2c
        agent = A2CAgent(
            env=env, n_steps=jcfg.env.training.n_steps,
            total_batch_size=jcfg.env.training.total_batch_size,
            actor_critic_networks=ours_as_jumanji_networks(
                dataclasses.replace(cfg.network, conv_impl=conv_impl)),
            optimizer=agent.optimizer, normalize_advantage=a2c.normalize_advantage,
            discount_factor=a2c.discount_factor, bootstrapping_factor=a2c.bootstrapping_factor,
            l_pg=a2c.l_pg, l_td=a2c.l_td, l_en=a2c.l_en)
    elif network != "stock":
        raise ValueError(f"network must be 'ours' or 'stock', got {network!r}")
    return agent, setup_training_state(env, agent, jax.random.PRNGKey(0)), jcfg


def _program(fn: Callable, state) -> Program:
    """``fn`` pmapped over the one device, as Jumanji's trainer runs it, compiled (timed)."""
    t = time.perf_counter()
    compiled = jax.pmap(fn, axis_name="devices").lower(state).compile()
    return Program(compiled, state, time.perf_counter() - t)


def epoch_program(cfg: ExperimentConfig, updates: int, network: str = "ours",
                  conv_impl: str = "xla") -> Program:
    """Jumanji's trainer as jumanji/training/train.py runs it: ``updates`` A2C updates a call."""
    agent, state, jcfg = agent_and_state(cfg, updates, network, conv_impl)

    def epoch_fn(training_state):  # verbatim from jumanji/training/train.py
        training_state, metrics = jax.lax.scan(
            lambda training_state, _: agent.run_epoch(training_state),
            training_state, None, jcfg.env.training.num_learner_steps_per_epoch)
        metrics = jax.tree_util.tree_map(jnp.mean, metrics)
        return training_state, metrics

    return _program(epoch_fn, state)


def component_programs(cfg: ExperimentConfig) -> dict[str, Program]:
    """The pieces of one update of Jumanji's trainer with our network (``hk.Conv2D``), by label:
    its rollout (T policy steps + env) and one whole ``run_epoch``."""
    agent, state, _ = agent_and_state(cfg, 1, "ours", "xla")
    return {
        "jumanji/rollout: T policy steps + env": _program(
            lambda ts: agent.rollout(ts.params_state.params.actor, ts.acting_state), state),
        "jumanji/run_epoch: one whole update": _program(agent.run_epoch, state),
    }
