"""``last``: the K-step meta-gradient, w = e_K (Xu et al. 2018 at K = 1).

    meta_loss(eta) = l_K = L'(theta_K(eta); R_K)

The claims' K-step baseline: C2 compares its variance across K, C3 mixing against it.
"""

KIND = "last"
SETTINGS: dict = {}


def weights(scheme, horizon: int) -> tuple[float, ...]:
    """e_K, shape [K]."""
    return (0.0,) * (horizon - 1) + (1.0,)

CLAIM_ROLE = "k_step"  # the claims' K-step meta-gradient (mgrl.runs.claim_roles)
