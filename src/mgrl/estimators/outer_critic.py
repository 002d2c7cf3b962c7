"""Where the outer advantages A' come from: the critic, or an outer critic (any kind may use it).

    A'_t = GAE(gamma', lambda')_t of v'(s)        [T, B], no gradient

with v' the outer critic's values (a second value head trained by TD(lambda') at gamma', Bonnet,
Midgley and Laterre 2022) when the run uses it, else the critic's own values (trained at the
meta-learned gamma, so its A' is biased by gamma). Which runs use it: :func:`mgrl.runs.uses_outer_critic`.
"""

from __future__ import annotations


def outer_advantages(rollout, values, outer_values, use_outer_critic: bool, outer_gamma,
                     outer_lambda):
    """A' [T, B] of ``rollout`` from ``outer_values`` [T + 1, B] if ``use_outer_critic`` else from
    ``values`` [T + 1, B], with gradients stopped."""
    import jax

    from mgrl.losses import rollout_advantages

    if use_outer_critic:
        values = outer_values
    return rollout_advantages(rollout, jax.lax.stop_gradient(values), outer_gamma, outer_lambda)
