"""The probe of one seed: every probed state, every (K, scheme), written to Parquet."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd

from mgrl import metrics as metrics_io
from mgrl.code import PROBE_MODULES
from mgrl.config import META_PARAMETERS, ExperimentConfig
from mgrl.estimators import exists_at, is_weighting, scheme_weights
from mgrl.estimators.weighting import weighted_samples
from mgrl.io import write_parquet_atomic
from mgrl.probe.columns import SAMPLE_COLUMNS, SUMMARY_COLUMNS, sample_frame, typed
from mgrl.probe.sampling import (sample_meta_gradients, sample_outer_loss_jacobians,
                                 sample_return_references)
from mgrl.probe.states import SchemeAgents, load_probe_state, probe_keys
from mgrl.probe.statistics import summarise_samples
from mgrl.runs import sample_identity, scheme_of

log = logging.getLogger("mgrl")


def run_probe(
    cfg: ExperimentConfig,
    run_dir: str | Path,
    seed: int,
    out_dir: str | Path,
    samples_per_batch: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe seed ``seed`` of the a2c run in ``run_dir`` at every ``probe.checkpoints`` interval.

    For each interval: keys 1..max(M, M_ref); a forward pass at K_ref for the first M_ref keys (the
    reference and, for the first M keys, every weighting scheme of the reference's agent at every
    K), a pass at K_max for keys beyond M_ref, one per other agent at K_max, a reverse pass per
    ``bmg`` (K, scheme). Writes ``out_dir/samples.parquet`` (:data:`SAMPLE_COLUMNS`) and
    ``out_dir/summary.parquet`` (:data:`SUMMARY_COLUMNS`) atomically and returns (samples,
    summary). Deterministic in (cfg, checkpoint, seed): keys from (seed, interval), bootstrap
    seeded by (seed, interval, K). ``samples_per_batch`` is passed to the samplers (None:
    ``probe.samples_per_batch`` of the config, whose own None means one vmap of all keys).
    """
    if samples_per_batch is None:
        samples_per_batch = cfg.probe.samples_per_batch
    seed = int(seed)
    probe_cfg = cfg.probe
    num, num_ref, k_ref = probe_cfg.num_samples, probe_cfg.reference_samples, probe_cfg.reference_horizon
    shared = min(num, num_ref)
    k_max = max(cfg.horizons)
    agents = SchemeAgents(cfg)
    reference_agent = agents.agent(None)
    provenance = metrics_io.provenance(cfg, PROBE_MODULES)
    sample_frames, summary_rows = [], []
    for interval in probe_cfg.checkpoints:
        state = load_probe_state(cfg, run_dir, seed, interval)
        env_steps = int(state.env_steps)
        keys = probe_keys(seed, interval, max(num, num_ref))
        t = time.perf_counter()
        if probe_cfg.reference_advantages == "returns":
            reference = np.asarray(sample_return_references(
                reference_agent, state, keys[:num_ref], k_ref, probe_cfg.return_steps,
                samples_per_batch=samples_per_batch))
            passes = {id(reference_agent): np.asarray(sample_outer_loss_jacobians(
                reference_agent, state, keys[:num], k_max, samples_per_batch=samples_per_batch))}
        else:
            reference_pass = np.asarray(sample_outer_loss_jacobians(
                reference_agent, state, keys[:num_ref], k_ref, samples_per_batch=samples_per_batch))
            reference = reference_pass[:, k_ref - 1]
            passes = {id(reference_agent): reference_pass[:shared, :k_max]}
        if num > num_ref and probe_cfg.reference_advantages == "critic":
            extra = np.asarray(sample_outer_loss_jacobians(
                reference_agent, state, keys[num_ref:num], k_max,
                samples_per_batch=samples_per_batch))
            passes[id(reference_agent)] = np.concatenate([passes[id(reference_agent)], extra])
        log.info("probe seed %d interval %d: %d passes of K_ref=%d in %.1fs", seed, interval,
                 num_ref, k_ref, time.perf_counter() - t)
        where = dict(provenance, seed=seed, interval=interval, env_steps=env_steps)
        sample_frames.append(sample_frame(reference, dict(
            where, role="reference", horizon=k_ref, scheme="last")))
        by_estimator: dict[tuple, np.ndarray] = {}
        for horizon in cfg.horizons:
            t = time.perf_counter()
            for scheme in [s for s in cfg.schemes if exists_at(cfg.schemes[s], horizon)]:
                estimator = sample_identity(cfg, scheme, horizon)
                if estimator not in by_estimator:
                    agent = agents.agent(scheme)
                    weights = scheme_weights(cfg.schemes[scheme], horizon)
                    if not is_weighting(scheme_of(cfg, scheme)):
                        by_estimator[estimator] = np.asarray(sample_meta_gradients(
                            agent, state, keys[:num], jnp.asarray(weights, jnp.float32),
                            samples_per_batch=samples_per_batch))
                    else:
                        if id(agent) not in passes:
                            passes[id(agent)] = np.asarray(sample_outer_loss_jacobians(
                                agent, state, keys[:num], k_max,
                                samples_per_batch=samples_per_batch))
                        by_estimator[estimator] = weighted_samples(passes[id(agent)], weights)
                samples = by_estimator[estimator]
                if not np.all(np.isfinite(samples)):
                    log.warning("probe seed %d interval %d K=%d %s: non-finite meta-gradients",
                                seed, interval, horizon, scheme)
                sample_frames.append(sample_frame(samples, dict(
                    where, role="estimate", horizon=horizon, scheme=scheme)))
                rng = np.random.default_rng([seed, interval, horizon])  # same resamples per scheme
                summary_rows.append(dict(
                    where, horizon=horizon, scheme=scheme, num_samples=num,
                    probed_parameters=",".join(META_PARAMETERS),
                    **summarise_samples(samples, reference, shared, probe_cfg.bootstrap, rng),
                    reference_horizon=k_ref, reference_samples=num_ref,
                    reference_advantages=probe_cfg.reference_advantages,
                    bootstrap_resamples=probe_cfg.bootstrap))
            log.info("probe seed %d interval %d K=%d: %d estimators in %.1fs", seed, interval,
                     horizon, len(by_estimator), time.perf_counter() - t)
    samples_frame = typed(pd.concat(sample_frames, ignore_index=True), SAMPLE_COLUMNS)
    summary_frame = typed(pd.DataFrame(summary_rows), SUMMARY_COLUMNS)
    out_dir = Path(out_dir)
    write_parquet_atomic(samples_frame, out_dir / "samples.parquet")
    write_parquet_atomic(summary_frame, out_dir / "summary.parquet")
    log.info("probe seed %d: wrote %d samples and %d summary rows to %s",
             seed, len(samples_frame), len(summary_frame), out_dir)
    return samples_frame, summary_frame
