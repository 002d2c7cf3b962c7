"""Haiku actor-critic: separate torsos (convolutions, or none), policy and value MLP heads.

``apply(params, observation, action_mask) -> (logits [.., A], value [..])``: illegal actions get a
large negative logit (``network.mask_illegal``), so they have (numerically) zero probability and
contribute nothing to the entropy; unmasked, every move keeps a positive probability and an illegal
one ends the episode (Jumanji's step). ``apply_rollout(params, observation [T+1, B, ...], action_mask [T+1, B, A]) -> (logits
[T, B, A], values [T+1, B], outer_values [T+1, B] or None)`` is the same network in one pass over a
rollout: the critics on all T + 1 observations (the last one bootstraps), the policy on the first T.
Snake's grid [rows, cols, 5] goes through the convolutions; with ``conv_channels`` empty the torso
only flattens, and with empty hidden sizes a head is linear (tabular on a one-hot observation).

With ``outer_critic=True`` the network has a third part, the outer critic (Bonnet, Midgley and
Laterre 2022): its own conv torso and value MLP (the critic's sizes), trained with the outer
gamma', lambda' and used only for the outer advantages A'. It shares no parameter with the actor or
the critic, and Haiku creates it last, so their initial parameters are the same with it or without.
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
    apply_rollout: Callable[[hk.Params, chex.Array, chex.Array], tuple]
    outer_critic: bool = False  # whether the parameters hold an outer critic


def conv_geometry(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(output size, zeros before, zeros after) along one spatial axis, as ``hk.Conv2D``:
    VALID: floor((size - kernel) / stride) + 1, no padding; SAME: ceil(size / stride), the
    (output - 1) stride + kernel - size zeros split with the smaller half first."""
    if padding == "VALID":
        return (size - kernel) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


class PatchConv2D(hk.Module):
    """2-D convolution (VALID or SAME padding, any stride) written as shifted, strided slices
    and one matrix multiply.

    Same parameters as ``hk.Conv2D`` (``w`` [k, k, C_in, C_out] with the same initialiser, ``b``
    [C_out]) and the same outputs; with x zero-padded as :func:`conv_geometry` says and stride s::

        y[n, i, j, o] = b[o] + sum_{di, dj, c} x[n, s i + di, s j + dj, c] w[di, dj, c, o]

    Why: XLA's CPU backend computes convolution weight-gradients about 10x slower inside
    ``lax.scan`` (where every update of this project lives) than outside it; a matmul has no such
    slow path (benchmarks/RESULTS.md). On GPU both are fast; ``network.conv_impl`` selects.
    """

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, padding: str = "VALID",
                 name: str | None = None):
        super().__init__(name=name)
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding

    def __call__(self, x: chex.Array) -> chex.Array:
        k, s, c_in = self.kernel_size, self.stride, x.shape[-1]
        fan_in = k * k * c_in
        w_init = hk.initializers.TruncatedNormal(1.0 / jnp.sqrt(fan_in))
        w = hk.get_parameter("w", (k, k, c_in, self.channels), x.dtype, init=w_init)
        b = hk.get_parameter("b", (self.channels,), x.dtype, init=jnp.zeros)
        (rows, *row_pad), (cols, *col_pad) = (conv_geometry(n, k, s, self.padding)
                                              for n in x.shape[-3:-1])
        if any(row_pad + col_pad):
            x = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [tuple(row_pad), tuple(col_pad), (0, 0)])
        if s == 1:
            slices = [x[..., di:di + rows, dj:dj + cols, :] for di in range(k) for dj in range(k)]
        else:
            slices = [x[..., di:di + s * (rows - 1) + 1:s, dj:dj + s * (cols - 1) + 1:s, :]
                      for di in range(k) for dj in range(k)]
        patches = jnp.concatenate(slices, axis=-1)
        # [N, rows, cols, k*k*C_in], ordered (di, dj, c) like w's leading axes
        return patches @ w.reshape(fan_in, self.channels) + b


def _torso(cfg: NetworkConfig, name: str) -> hk.Sequential:
    layers: list = []
    strides = cfg.conv_strides or (1,) * len(cfg.conv_channels)
    for i, (channels, stride) in enumerate(zip(cfg.conv_channels, strides)):
        if cfg.conv_impl == "matmul":
            conv = PatchConv2D(channels, cfg.kernel_size, stride, cfg.conv_padding, name=f"conv{i}")
        else:
            conv = hk.Conv2D(channels, cfg.kernel_size, stride=stride, padding=cfg.conv_padding,
                             name=f"conv{i}")
        layers += [conv, jax.nn.relu]
    layers.append(hk.Flatten())
    return hk.Sequential(layers, name=name)


def make_actor_critic(cfg: NetworkConfig, num_actions: int = 4, dtype=jnp.float32,
                      outer_critic: bool = False, observation_ndim: int = 3) -> ActorCritic:
    """Build the network for observations of rank ``observation_ndim`` (3: Snake's grid) and
    ``num_actions`` actions; parameters take ``dtype`` (float64 for gradient checks)."""
    nd = observation_ndim

    def forward(observation: chex.Array, action_mask: chex.Array, policy_rows: int | None = None):
        """Logits of the first ``policy_rows`` observations (all if None), values (and outer
        values, None without an outer critic) of all."""
        x = observation.astype(dtype)
        x_policy, mask = x[:policy_rows], action_mask[:policy_rows]
        actor = _torso(cfg, "actor_torso")(x_policy)
        logits = hk.nets.MLP([*cfg.policy_hidden, num_actions], with_bias=cfg.bias,
                             name="policy")(actor)
        if cfg.mask_illegal:
            logits = jnp.where(mask, logits, jnp.asarray(MASKED_LOGIT, logits.dtype))
        critic = _torso(cfg, "critic_torso")(x)
        value = hk.nets.MLP([*cfg.value_hidden, 1], with_bias=cfg.bias, name="value")(critic)[..., 0]
        outer_value = None
        if outer_critic:
            outer = _torso(cfg, "outer_critic_torso")(x)
            outer_value = hk.nets.MLP([*cfg.value_hidden, 1], with_bias=cfg.bias,
                                      name="outer_value")(outer)[..., 0]
        return logits, value, outer_value

    net = hk.without_apply_rng(hk.transform(forward))

    def apply(params, observation, action_mask):
        # Haiku convs want one batch axis: fold any leading axes ([T, B] -> [T*B]) and unfold.
        lead = observation.shape[:-nd]
        logits, value, _ = net.apply(params, observation.reshape((-1,) + observation.shape[-nd:]),
                                     action_mask.reshape((-1, action_mask.shape[-1])))
        return logits.reshape(lead + (num_actions,)), value.reshape(lead)

    def apply_rollout(params, observation, action_mask):
        # [T+1, B, ...] -> [(T+1)*B, ...]; the policy sees the first T*B rows (steps 0..T-1).
        steps, batch = observation.shape[:2]
        logits, value, outer_value = net.apply(
            params, observation.reshape((-1,) + observation.shape[-nd:]),
            action_mask.reshape((-1, action_mask.shape[-1])), (steps - 1) * batch)
        if outer_value is not None:
            outer_value = outer_value.reshape((steps, batch))
        return (logits.reshape((steps - 1, batch, num_actions)), value.reshape((steps, batch)),
                outer_value)

    return ActorCritic(init=net.init, apply=apply, apply_rollout=apply_rollout,
                       outer_critic=outer_critic)
