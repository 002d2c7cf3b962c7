"""What every weighting kind shares: the meta-loss sum_k w_k l_k over one window.

    l_k            = L'(theta_k; R_k)     outer loss after k inner updates (k = 1..K), [K]
    meta_loss(eta) = sum_{k=1..K} w_k l_k,    w_k >= 0,  sum_k w_k = 1

A weighting kind (``last``, ``uniform``, ``lambda``, ``custom``) only says w (its ``weights``);
training, the probes' samples and the claims all go through :func:`mixed_outer_loss`. The weights
are a traced argument of the compiled programs, so every weighting at one K shares one program.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mgrl.estimators import Estimator, no_state


def mixed_outer_loss(outer_losses: Any, weights: Any) -> Any:
    """sum_k w_k l_k: ``outer_losses`` [K, ...] (l_1..l_K, or per-sample rows d l_k / d eta with
    any trailing axes), ``weights`` [K] -> [...]. Works on jax arrays (traced, in the losses'
    dtype) and on numpy arrays alike."""
    if outer_losses.shape[:1] != weights.shape:
        raise ValueError(f"outer losses {outer_losses.shape} need one weight per k, got weights "
                         f"{weights.shape}")
    weights = weights.astype(outer_losses.dtype).reshape(
        weights.shape + (1,) * (outer_losses.ndim - 1))
    return (weights * outer_losses).sum(axis=0)


def meta_loss(agent, eta, state, key, weights, outer_advantages=None, final_outer: bool = True,
              target=None):
    """sum_k w_k L'(theta_k) after K = len(weights) inner updates from ``state``
    (:meth:`mgrl.agent.MetaGradientAgent.window`; ``target`` is unused: no bootstrap).

    Returns (meta_loss, (final params, inner opt state, env carry, last rollout, per-step aux [K])).
    """
    outputs = agent.window(eta, state, key, weights.shape[0], outer_advantages, final_outer)
    return mixed_outer_loss(outputs[4]["outer"], weights), outputs


def weighted_samples(jacobians: np.ndarray, weights) -> np.ndarray:
    """Samples [M, D] of the weighting ``weights`` [K] from one-pass Jacobians [M, K_pass, D],
    K <= K_pass (J[m, k-1] = d l_k / d eta): g_m = sum_k w_k J[m, k-1], in float64."""
    jacobians = np.asarray(jacobians, np.float64)
    weights = np.asarray(weights, np.float64)
    if len(weights) > jacobians.shape[1]:
        raise ValueError(f"a K = {len(weights)} weighting needs passes of >= {len(weights)} steps, "
                         f"got {jacobians.shape[1]}")
    return mixed_outer_loss(np.moveaxis(jacobians[:, :len(weights)], 1, 0), weights)


ESTIMATOR = Estimator(kind="weighting", meta_loss=meta_loss, init_state=no_state, kept_updates=0,
                      lookahead_rollouts=0, is_weighting=True)
