"""The probes' output columns: one row per sample (SAMPLE_COLUMNS), one per (state, K, scheme)
(SUMMARY_COLUMNS), each with its description (docs/outputs.md is generated from them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mgrl import metrics as metrics_io
from mgrl.config import META_PARAMETERS

_PROVENANCE = ("git_sha", "config_hash", "code_hash", "jax_version", "jumanji_version", "haiku_version",
               "optax_version")

SAMPLE_COLUMNS: dict[str, str] = {
    "experiment": "experiment name (config `name`)",
    "seed": "training seed whose a2c checkpoint is probed (also seeds the probe keys)",
    "interval": "training interval of the probed checkpoint (probe.checkpoints)",
    "env_steps": "environment steps of the probed state (per seed)",
    "role": "'estimate' (a (K, scheme) sample) or 'reference' (scheme last at K_ref)",
    "horizon": "K, inner updates in the meta-gradient window (K_ref for reference rows)",
    "scheme": "outer-loss weighting scheme name ('last' for reference rows)",
    "meta_parameter": "gamma or lambda: d meta-loss / d eta_<param> (raw, unclipped); every "
                      "meta-parameter is written, learned or not",
    "sample": "key index m: at one interval, sample m of every (K, scheme) and reference sample m "
              "come from the same key (one forward pass)",
    "value": "the meta-gradient component",
    **{c: metrics_io.COLUMNS[c] for c in _PROVENANCE},
}


def _statistic_columns(name: str, text: str) -> dict[str, str]:
    return {name: text, f"{name}_lo": f"bootstrap 2.5% quantile of {name}",
            f"{name}_hi": f"bootstrap 97.5% quantile of {name}"}


SUMMARY_COLUMNS: dict[str, str] = {
    "experiment": "experiment name (config `name`)",
    "seed": "training seed whose a2c checkpoint is probed",
    "interval": "training interval of the probed checkpoint",
    "env_steps": "environment steps of the probed state (per seed)",
    "horizon": "K, inner updates in the meta-gradient window",
    "scheme": "outer-loss weighting scheme name",
    "num_samples": "M, meta-gradient samples behind the row",
    "probed_parameters": "comma-separated meta-parameters the statistics use: every one, learned or "
                         "not (gamma,lambda)",
    "shared_samples": "c, samples paired with reference samples (same keys): min(M, M_ref)",
    **_statistic_columns("step_cosine", "cosine of the expected Adam steps a = mean / RMS per "
                                        "component of the samples and of the reference samples "
                                        "(in [-1, 1]; the bias measure of C1)"),
    **_statistic_columns("variance_trace", "trace of the per-component unbiased sample variance "
                                           "over the probed parameters"),
    **_statistic_columns("snr", "signal-to-noise ||mean||^2 / variance_trace (probed parameters)"),
    **_statistic_columns("cosine_to_reference", "cosine of the sample mean with the reference mean "
                                                "(probed parameters; in [-1, 1])"),
    **_statistic_columns("bias2_debiased", "debiased squared bias ||mean - reference||^2 minus "
                                           "the trace of the variance of the difference (paired "
                                           "keys' covariance included): unbiased for ||E g - E "
                                           "g_ref||^2 in raw units, can be < 0"),
    **_statistic_columns("direction_variance", "trace of the unbiased variance of the unit vectors "
                                               "g_m / ||g_m||: scale-free (0: all samples point the "
                                               "same way; ~1: spread out)"),
    **{col: text for p in META_PARAMETERS for col, text in {
        **_statistic_columns(f"mean_{p}", f"sample mean of d meta-loss / d eta_{p}"),
        f"var_{p}": f"unbiased sample variance of d meta-loss / d eta_{p}",
        f"reference_{p}": f"reference mean of d meta-loss / d eta_{p} (last scheme at K_ref)",
        f"reference_var_{p}": f"unbiased sample variance of the reference samples of d meta-loss / "
                              f"d eta_{p}",
        f"step_{p}": f"expected Adam step of eta_{p}: mean / RMS of the samples (in [-1, 1])",
        f"reference_step_{p}": f"the reference's expected Adam step of eta_{p} (in [-1, 1])",
    }.items()},
    "reference_horizon": "K_ref of the reference estimator",
    "reference_samples": "M_ref, samples behind the reference",
    "reference_advantages": "A' of the reference's outer loss (probe.reference_advantages): critic "
                            "or returns (Monte Carlo, no critic's bias)",
    "bootstrap_resamples": "bootstrap resamples behind every CI",
    **{c: metrics_io.COLUMNS[c] for c in _PROVENANCE},
}


def sample_frame(values: np.ndarray, base: dict) -> pd.DataFrame:
    """Long form of samples [M, 2]: one row per (sample, meta-parameter)."""
    num_samples = values.shape[0]
    return pd.DataFrame({
        **{k: [v] * (num_samples * len(META_PARAMETERS)) for k, v in base.items()},
        "meta_parameter": np.tile(np.asarray(META_PARAMETERS, dtype=object), num_samples),
        "sample": np.repeat(np.arange(num_samples, dtype=np.int64), len(META_PARAMETERS)),
        "value": np.asarray(values, np.float64).reshape(-1),
    })


def typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Documented columns in documented order; integer columns as int64."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"probe output lacks documented columns {missing}")
    frame = frame[list(columns)].copy()
    for col in ("seed", "interval", "env_steps", "horizon", "sample", "num_samples", "shared_samples",
                "reference_horizon", "reference_samples", "bootstrap_resamples"):
        if col in frame.columns:
            frame[col] = frame[col].astype("int64")
    return frame
