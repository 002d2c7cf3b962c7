"""Shared fixtures: tiny boards and networks so the whole suite runs in minutes on 2 CPU cores."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("MPLBACKEND", "agg")

import jax
import pytest

from mgrl.config import config_from_dict

# Identical programs compiled by several tests (same shapes, other seeds) are compiled once, in
# this process and in the `python -m mgrl` / Snakemake / SLURM subprocesses alike: they inherit
# $MGRL_JAX_CACHE (read by mgrl.__main__) and share one cache folder.
JAX_CACHE = os.path.abspath(os.environ.setdefault(
    "MGRL_JAX_CACHE", os.path.join(os.path.dirname(__file__), "..", ".jax_cache", "tests")))
os.environ["MGRL_JAX_CACHE"] = JAX_CACHE
jax.config.update("jax_compilation_cache_dir", JAX_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def tiny_config(**overrides):
    """A 5x5 board, 4 environments, 3-step rollouts and a network of a few hundred weights."""
    raw = {
        "name": "tiny",
        "seeds": [0, 1],
        "horizons": [1, 2, 3],
        "schemes": {
            "last": {"kind": "last"},
            "uniform": {"kind": "uniform"},
            "lambda_0.5": {"kind": "lambda", "rho": 0.5},
        },
        "env": {"num_rows": 5, "num_cols": 5, "time_limit": 30, "num_envs": 4, "rollout_length": 3},
        "network": {"conv_channels": [4], "kernel_size": 2, "policy_hidden": [8], "value_hidden": [8]},
        "meta": {"learn": ["gamma", "lambda"]},
        "train": {"num_intervals": 4, "inner_updates_per_interval": 2, "checkpoint_every": 1},
        "probe": {"reference_horizon": 3, "num_samples": 4, "reference_samples": 4},
    }
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], **values}
        else:
            raw[section] = values
    return config_from_dict(raw)


@pytest.fixture
def tiny():
    return tiny_config()


def pytest_collection_modifyitems(config, items):
    """The SLURM test last: its scenario runs in the background from the end of collection on
    (see pytest_collection_finish), and the test only checks what it recorded."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is not None)


def pytest_collection_finish(session):
    """Start the real-SLURM scenario of tests/test_slurm.py beside the rest of the suite: it waits
    mostly on the scheduler. Under pytest-xdist the test starts it itself, in its worker."""
    if os.environ.get("PYTEST_XDIST_WORKER") or session.config.option.collectonly:
        return
    if any(item.get_closest_marker("slurm") for item in session.items):
        import test_slurm

        test_slurm.start_background_scenario(session.config._tmp_path_factory.mktemp("slurm"))


def pytest_sessionfinish(session, exitstatus):
    module = sys.modules.get("test_slurm")
    if module is not None:
        module.finish_background_scenario()
