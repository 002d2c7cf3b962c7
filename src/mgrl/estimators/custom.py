"""``custom``: explicit weights w_1..w_K (non-negative, sum 1), defined only at K = len(weights)."""

import math

KIND = "custom"
SETTINGS = {"weights": (tuple[float, ...] | None, None, "w_1..w_K (non-negative, sum 1), used at K = "
                        "len(weights)", {"items": {"minimum": 0}})}


def validate(scheme, horizons) -> list[tuple[str, str]]:
    if not scheme.weights:
        return [("weights", "the custom kind needs a non-empty list of weights")]
    if not math.isclose(sum(scheme.weights), 1.0, abs_tol=1e-6):
        return [("weights", f"weights must sum to 1, got {sum(scheme.weights):.6g}")]
    if len(scheme.weights) not in horizons:
        return [("weights", f"has length {len(scheme.weights)}, which is not one of horizons "
                            f"{list(horizons)}")]
    return []


def exists_at(scheme, horizon: int) -> bool:
    return len(scheme.weights) == horizon


def weights(scheme, horizon: int) -> tuple[float, ...]:
    """The configured weights, shape [K]."""
    from mgrl.settings import ConfigError

    if len(scheme.weights) != horizon:
        raise ConfigError("schemes.weights",
                          f"custom weights have length {len(scheme.weights)} but K = {horizon}")
    return tuple(scheme.weights)
