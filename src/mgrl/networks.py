"""Haiku actor-critic for the Snake grid: separate conv torsos, policy and value MLP heads.

``apply(params, grid, action_mask) -> (logits [.., 4], value [..])``: illegal actions get a large
negative logit, so they have (numerically) zero probability and contribute nothing to the entropy.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp

from mgrl.config import NetworkConfig

MASKED_LOGIT = -1e9


class ActorCritic(NamedTuple):
    init: Callable[[chex.PRNGKey, chex.Array, chex.Array], hk.Params]
    apply: Callable[[hk.Params, chex.Array, chex.Array], tuple[chex.Array, chex.Array]]


def _torso(cfg: NetworkConfig, name: str) -> hk.Sequential:
    layers: list = []
    for i, channels in enumerate(cfg.conv_channels):
        layers += [hk.Conv2D(channels, cfg.kernel_size, padding="VALID", name=f"conv{i}"), jax.nn.relu]
    layers.append(hk.Flatten())
    return hk.Sequential(layers, name=name)


def make_actor_critic(cfg: NetworkConfig, num_actions: int = 4, dtype=jnp.float32) -> ActorCritic:
    """Build the network; parameters take ``dtype`` (float64 for gradient checks)."""

    def forward(grid: chex.Array, action_mask: chex.Array) -> tuple[chex.Array, chex.Array]:
        x = grid.astype(dtype)
        actor = _torso(cfg, "actor_torso")(x)
        logits = hk.nets.MLP([*cfg.policy_hidden, num_actions], name="policy")(actor)
        logits = jnp.where(action_mask, logits, jnp.asarray(MASKED_LOGIT, logits.dtype))
        critic = _torso(cfg, "critic_torso")(x)
        value = hk.nets.MLP([*cfg.value_hidden, 1], name="value")(critic)[..., 0]
        return logits, value

    net = hk.without_apply_rng(hk.transform(forward))

    def apply(params, grid, action_mask):
        # Haiku convs want one batch axis: fold any leading axes ([T, B] -> [T*B]) and unfold.
        lead = grid.shape[:-3]
        logits, value = net.apply(params, grid.reshape((-1,) + grid.shape[-3:]),
                                  action_mask.reshape((-1, action_mask.shape[-1])))
        return logits.reshape(lead + (num_actions,)), value.reshape(lead)

    return ActorCritic(init=net.init, apply=apply)
