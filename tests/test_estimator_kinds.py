"""The estimator kinds behind one interface: the registry, each kind's weights, defaults resolved
into the run's config (and hashed code), and the worked example of docs/estimators.md.

No compiled programs here: every check is plain Python on configs, weights and source files.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from mgrl import code
from mgrl import estimators
from mgrl.estimators import KINDS, SchemeConfig, bmg, is_weighting, scheme_weights
from mgrl.estimators.weighting import mixed_outer_loss, weighted_samples
from mgrl.runs import claim_roles, run_config, scheme_aliases

ROOT = Path(__file__).resolve().parents[1]


def test_every_kind_module_has_the_interface_and_weightings_sum_to_one():
    assert set(KINDS) == {"last", "uniform", "lambda", "custom", "bmg"}
    for kind, module in KINDS.items():
        assert module.KIND == kind and isinstance(module.SETTINGS, dict)
        assert hasattr(module, "weights") != hasattr(module, "estimator"), kind
    by_hand = {("last", 3): (0, 0, 1), ("uniform", 4): (0.25,) * 4,
               ("lambda", 3): (0.5, 0.25, 0.25), ("custom", 2): (0.3, 0.7)}
    schemes = {"last": SchemeConfig("last"), "uniform": SchemeConfig("uniform"),
               "lambda": SchemeConfig("lambda", rho=0.5), "custom": SchemeConfig("custom", weights=(0.3, 0.7))}
    for (kind, K), want in by_hand.items():
        np.testing.assert_allclose(scheme_weights(schemes[kind], K), want, rtol=0, atol=1e-15)
    assert not is_weighting(SchemeConfig("bmg", bootstrap_steps=1))
    assert scheme_weights(SchemeConfig("bmg", bootstrap_steps=1), 3) == (0.0, 0.0, 1.0)


def test_the_weighted_sum_is_one_function_for_losses_and_probe_samples():
    """Training's meta-loss (a [K] vector) and the probes' samples ([M, K, D] Jacobians) both go
    through mixed_outer_loss: w @ l, and per sample and meta-parameter sum_k w_k J[m, k]."""
    losses, w = np.array([1.0, 2.0, 4.0]), np.array([0.5, 0.25, 0.25])
    assert mixed_outer_loss(losses, w) == 0.5 + 0.5 + 1.0
    rng = np.random.default_rng(0)
    jacobians = rng.normal(size=(5, 4, 2))  # K_pass = 4 >= K = 3
    want = np.stack([sum(w[k] * jacobians[m, k] for k in range(3)) for m in range(5)])
    np.testing.assert_allclose(weighted_samples(jacobians, w), want, rtol=1e-14)
    with pytest.raises(ValueError, match="K = 5 weighting"):
        weighted_samples(jacobians, np.ones(5) / 5)


def test_a_bmg_runs_config_records_its_resolved_defaults():
    cfg = tiny_config(horizons=[1], schemes={"b": {"kind": "bmg", "bootstrap_steps": 1},
                                             "b_explicit": {"kind": "bmg", "bootstrap_steps": 1,
                                                            "bootstrap_target": "outer",
                                                            "matching_states": "target"}})
    run = run_config(cfg, 1, "b")
    assert run.schemes["b"].bootstrap_target == "outer"
    assert run.schemes["b"].matching_states == "target"
    assert run_config(run, 1, "b") == run  # idempotent
    # the implicit and the explicit default are one estimator, trained once
    assert scheme_aliases(cfg)[(1, "b_explicit")] == "b"
    inner = tiny_config(horizons=[1], schemes={"b": {"kind": "bmg", "bootstrap_steps": 1,
                                                     "bootstrap_target": "inner"}})
    assert run_config(inner, 1, "b").schemes["b"].matching_states is None


def test_changing_a_default_changes_the_config_hash(monkeypatch):
    """A run without the setting resolves the default in run_config, so the hash that names its
    checkpoints and its job params see a changed default (here: the other target, and the other
    matched states)."""
    cfg = tiny_config(horizons=[1], schemes={"b": {"kind": "bmg", "bootstrap_steps": 1}})
    before = run_config(cfg, 1, "b").hash()
    monkeypatch.setattr(bmg, "DEFAULT_TARGET", "inner")
    assert run_config(cfg, 1, "b").hash() != before
    monkeypatch.setattr(bmg, "DEFAULT_TARGET", "outer")
    monkeypatch.setattr(bmg, "DEFAULT_MATCHING_STATES", "window")
    assert run_config(cfg, 1, "b").hash() != before
    monkeypatch.undo()
    assert run_config(cfg, 1, "b").hash() == before


def test_reordering_the_bmg_tuples_changes_the_training_code_hash(tmp_path):
    """The kinds' modules are training code: reordering TARGETS (or editing a default) in
    estimators/bmg.py changes the hash stamped on checkpoints, so no run resumes under a new
    meaning; a file outside the hashed modules does not."""
    package = tmp_path / "mgrl"
    shutil.copytree(code.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = code.code_hash(code.TRAINING_MODULES, package)
    assert "estimators.bmg" in code.TRAINING_MODULES and "runs" in code.TRAINING_MODULES
    path = package / "estimators" / "bmg.py"
    source = path.read_text()
    swapped = source.replace('TARGETS = ("outer", "inner")', 'TARGETS = ("inner", "outer")')
    assert swapped != source
    path.write_text(swapped)
    assert code.code_hash(code.TRAINING_MODULES, package) != before
    path.write_text(source)
    (package / "published.py").write_text("# not training code\n")
    assert code.code_hash(code.TRAINING_MODULES, package) == before


def test_claim_roles_come_from_kinds_not_names():
    cfg = tiny_config(horizons=[2], schemes={"last": {"kind": "uniform"}, "kstep": {"kind": "last"},
                                             "oc": {"kind": "last", "outer_critic": True}},
                      agent={"outer_value_coef": 0.5})
    assert claim_roles(cfg) == {"k_step": "kstep", "mixing": "last"}
    only_mixing = dataclasses.replace(cfg, schemes={"uniform": SchemeConfig("uniform")})
    assert claim_roles(only_mixing) == {"mixing": "uniform"}


def test_the_documented_example_kind_is_found_as_a_weighting(tmp_path, monkeypatch):
    """docs/estimators.md's example module, written into a folder on the package's path: the
    registry finds it, and its weights are the documented ones."""
    page = (ROOT / "docs" / "estimators.md").read_text()
    (source,) = re.findall(r"`src/mgrl/estimators/linear.py`:\n\n```python\n(.*?)```", page, re.S)
    assert len(source.splitlines()) <= 20
    (tmp_path / "linear.py").write_text(source)
    monkeypatch.setattr(estimators, "__path__", [*estimators.__path__, str(tmp_path)])
    kinds = estimators._discover()
    assert "linear" in kinds and hasattr(kinds["linear"], "weights")
    linear = dataclasses.replace(SchemeConfig(), kind="linear")
    monkeypatch.setattr(estimators, "KINDS", kinds)
    assert is_weighting(linear)
    np.testing.assert_allclose(scheme_weights(linear, 3), (1 / 6, 2 / 6, 3 / 6), rtol=1e-15)
    np.testing.assert_allclose(sum(scheme_weights(linear, 7)), 1.0, rtol=1e-15)
