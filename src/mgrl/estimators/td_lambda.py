"""``lambda``: TD(lambda)-style mixing with decay ``rho`` (rho = 1: last; rho = 0: l_1 only).

    w_k = (1 - rho) rho^(k-1)   (k < K),     w_K = rho^(K-1)         sum_k w_k = 1
"""

KIND = "lambda"
SETTINGS = {"rho": (float | None, None, "rho of the TD(lambda)-style weights (1: last)",
                    {"minimum": 0, "maximum": 1})}


def validate(scheme, horizons) -> list[tuple[str, str]]:
    if scheme.rho is None:
        return [("rho", "the lambda kind needs rho in [0, 1]")]
    return []


def weights(scheme, horizon: int) -> tuple[float, ...]:
    """Shape [K]; the weight a truncation at k would leave, as in TD(lambda)'s lambda-return."""
    rho = float(scheme.rho)
    return tuple((1.0 - rho) * rho ** (k - 1) for k in range(1, horizon)) + (rho ** (horizon - 1),)
