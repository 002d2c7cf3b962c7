"""``uniform``: mixing, the mean of the k-step meta-gradients, w_k = 1/K ([paper]).

    meta_loss(eta) = (1/K) sum_{k=1..K} l_k
"""

KIND = "uniform"
SETTINGS: dict = {}


def weights(scheme, horizon: int) -> tuple[float, ...]:
    """1/K each, shape [K]."""
    return (1.0 / horizon,) * horizon

CLAIM_ROLE = "mixing"  # the claims' mixing base for the extra estimators (mgrl.runs.claim_roles)
