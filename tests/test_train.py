"""Training: determinism, compilation once, exact resume, Parquet schema, learning sanity."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import tiny_config
from mgrl import checkpoint as ckpt
from mgrl.metrics import COLUMNS, TIMING_COLUMNS
from mgrl import metrics as metrics_io
from mgrl.code import PACKAGE_DIR, TRAINING_MODULES, code_hash, module_paths
from mgrl.__main__ import main as cli_main
from mgrl.train import checkpoint_dir, make_train, run_training
from mgrl.runs import run_config


def metric_values(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def run_intervals(cfg, horizon, scheme, seeds, n):
    trainer = make_train(cfg, horizon, scheme)
    state = trainer.init(jnp.asarray(seeds))
    out = []
    for _ in range(n):
        state, m = trainer.run_interval(state)
        out.append(jax.device_get(m))
    return trainer, state, out


def test_same_seed_same_metrics_different_seed_different(tiny):
    _, _, a = run_intervals(tiny, 2, "uniform", [0], 2)
    _, _, b = run_intervals(tiny, 2, "uniform", [0], 2)
    _, _, c = run_intervals(tiny, 2, "uniform", [1], 2)
    for key in ("loss/meta", "meta/grad_gamma", "meta/gamma", "loss/inner"):
        np.testing.assert_array_equal(a[-1][key], b[-1][key])
        assert not np.array_equal(a[-1][key], c[-1][key]), key


def test_trainers_are_built_once_per_settings(tiny):
    """make_train builds one program (jitted functions, compiled executables) per settings and K:
    other seeds, names, interval counts and every scheme at that K share it, so tests, probes and
    resumes in one process trace and compile each program once; the scheme is its weights."""
    import dataclasses

    first = make_train(tiny, 2, "uniform")
    assert make_train(dataclasses.replace(tiny, seeds=(5,), name="other"), 2, "uniform").program \
        is first.program
    assert make_train(tiny_config(train={"num_intervals": 7, "checkpoint_every": 2}), 2,
                      "uniform").program is first.program
    assert make_train(tiny_config(agent={"learning_rate": 0.01}), 2, "uniform").program \
        is not first.program
    assert make_train(tiny, 1, "uniform").program is not first.program
    assert make_train(tiny, 1, "a2c").program is not make_train(tiny, 1, "last").program
    assert make_train(tiny, 2, "uniform", reuse=False).program is not first.program
    # `last` at K = 2 runs the same program with its own weights, and they are honoured
    last = make_train(tiny, 2, "last")
    assert last.program is first.program
    np.testing.assert_array_equal(last.weights, [0.0, 1.0])
    np.testing.assert_array_equal(first.weights, [0.5, 0.5])
    (a,), (b,) = (run_intervals(tiny, 2, s, [0], 1)[2] for s in ("last", "uniform"))
    assert a["meta/grad_gamma"][0] != b["meta/grad_gamma"][0]
    assert a["meta/gamma"][0] != b["meta/gamma"][0]


_LOWERINGS: list[list[str]] = []  # the recorders of trace and lowering events listening now
_TRACE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",  # each trace and each lowering that
                 "/jax/core/compile/jaxpr_to_mlir_module_duration")  # JAX's caches do not serve


def _on_compile_event(event, seconds, **_):
    if event in _TRACE_EVENTS:
        for recorder in _LOWERINGS:
            recorder.append(event)


jax.monitoring.register_event_duration_secs_listener(_on_compile_event)


def test_one_compilation_across_intervals(tiny):
    """A run compiles its interval once: the state an interval returns has the structure, shapes
    and dtypes it was given, so every interval of the run finds the same compiled executable (the
    program shared with the other tests of this file) and runs it without tracing or lowering
    anything (a persistent-cache hit still traces and lowers); init is traced once per seed count."""
    trainer = make_train(tiny, 2, "last")
    state = trainer.init(jnp.asarray([0, 1]))
    traced = trainer.init._cache_size()
    trainer.init(jnp.asarray([2, 3]))
    assert trainer.init._cache_size() == traced
    first = trainer.executable(state)
    lowerings: list[str] = []
    _LOWERINGS.append(lowerings)
    try:
        for _ in range(3):
            state, _ = trainer.run_interval(state)
            assert trainer.executable(state) is first
    finally:
        _LOWERINGS.remove(lowerings)
    assert lowerings == []


def test_vmapped_seeds_are_independent_runs(tiny):
    """Seed s in a batch of seeds follows the same trajectory as seed s alone (up to float noise)."""
    _, _, batch = run_intervals(tiny, 2, "last", [0, 1], 2)
    _, _, alone = run_intervals(tiny, 2, "last", [1], 2)
    np.testing.assert_allclose(batch[-1]["meta/gamma"][1], alone[-1]["meta/gamma"][0], rtol=1e-5)
    np.testing.assert_allclose(batch[-1]["loss/inner"][1], alone[-1]["loss/inner"][0], rtol=1e-4)


def test_baseline_keeps_gamma_and_lambda_fixed(tiny):
    _, _, out = run_intervals(tiny, 1, "a2c", [0], 2)
    assert out[-1]["meta/gamma"][0] == pytest.approx(tiny.agent.gamma_init, rel=1e-6)
    assert out[-1]["meta/lambda"][0] == pytest.approx(tiny.agent.lambda_init, rel=1e-6)
    assert np.isnan(out[-1]["meta/grad_gamma"][0])
    assert out[-1]["meta/gamma_mean"][0] == pytest.approx(tiny.agent.gamma_init, rel=1e-6)
    _, _, meta = run_intervals(tiny, 2, "last", [0], 2)
    assert meta[-1]["meta/gamma"][0] != pytest.approx(tiny.agent.gamma_init, rel=1e-6)
    # one meta-update per interval here (2 inner updates, K = 2): the gamma its updates used is
    # gamma_init in the first interval and the first interval's final gamma in the second
    assert tiny.train.inner_updates_per_interval == 2
    assert meta[0]["meta/gamma_mean"][0] == pytest.approx(tiny.agent.gamma_init, rel=1e-6)
    assert meta[1]["meta/gamma_mean"][0] == pytest.approx(meta[0]["meta/gamma"][0], rel=1e-6)
    assert meta[1]["meta/gamma_mean"][0] != pytest.approx(meta[1]["meta/gamma"][0], rel=1e-6)


def test_parquet_has_documented_columns_and_provenance(tiny, tmp_path):
    frame = run_training(tiny, 2, "last", [0, 1], tmp_path / "run", progress=False)
    disk = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert list(disk.columns) == list(COLUMNS)
    assert len(disk) == 2 * tiny.train.num_intervals
    assert set(disk["seed"]) == {0, 1}
    assert (disk["horizon"] == 2).all() and (disk["scheme"] == "last").all()
    assert (disk["config_hash"] == run_config(tiny, 2, "last", (0, 1)).hash()).all()
    assert disk["jax_version"].iloc[0] == jax.__version__
    per_seed = disk[disk.seed == 0]
    assert np.all(np.diff(per_seed["env_steps"]) == 2 * tiny.env.num_envs * tiny.env.rollout_length)
    assert per_seed["inner_updates"].tolist() == [2, 4, 6, 8]
    pd.testing.assert_frame_equal(metric_values(frame), metric_values(disk))


def test_interrupted_and_resumed_run_equals_uninterrupted(tiny, tmp_path):
    full = run_training(tiny, 2, "uniform", [0], tmp_path / "full", progress=False)
    partial = run_training(tiny, 2, "uniform", [0], tmp_path / "cut", progress=False, stop_after=2)
    assert len(partial) == 2 and not (tmp_path / "cut" / "metrics.parquet").exists()
    cut_dir = checkpoint_dir(tmp_path / "cut", run_config(tiny, 2, "uniform", (0,)).hash())
    assert [p.name for p in ckpt.list_checkpoints(cut_dir)] == ["interval_000001", "interval_000002"]
    resumed = run_training(tiny, 2, "uniform", [0], tmp_path / "cut", progress=False)
    pd.testing.assert_frame_equal(metric_values(full), metric_values(resumed))
    # The final training states are bit-identical too.
    template = jax.eval_shape(make_train(tiny, 2, "uniform").init, jnp.asarray([0]))
    full_dir = checkpoint_dir(tmp_path / "full", run_config(tiny, 2, "uniform", (0,)).hash())
    _, state_full, _ = ckpt.load_latest(full_dir, template)
    _, state_cut, _ = ckpt.load_latest(cut_dir, template)
    for a, b in zip(jax.tree.leaves(state_full), jax.tree.leaves(state_cut)):
        np.testing.assert_array_equal(a, b)


def test_outer_bmg_optimiser_state_persists_is_checkpointed_and_resumes_bit_identically(tmp_path):
    """The outer-target bmg's outer-step optimiser state is part of the training state: it moves
    with every meta-update (never reset), a run cut after 1 of 3 intervals and resumed from its
    checkpoint equals the uninterrupted run bit for bit, and the look-ahead's fresh rollout per
    meta-update is counted in extra_env_steps, not env_steps."""
    cfg = tiny_config(horizons=[1], schemes={"bmg": {"kind": "bmg", "bootstrap_steps": 1}},
                      train={"num_intervals": 3})
    full = run_training(cfg, 1, "bmg", [0], tmp_path / "full", progress=False)
    run_training(cfg, 1, "bmg", [0], tmp_path / "cut", progress=False, stop_after=1)
    resumed = run_training(cfg, 1, "bmg", [0], tmp_path / "cut", progress=False)
    pd.testing.assert_frame_equal(metric_values(full), metric_values(resumed))
    trainer = make_train(cfg, 1, "bmg")
    template = jax.eval_shape(trainer.init, jnp.asarray([0]))
    states = {}
    for run in ("full", "cut"):
        directory = checkpoint_dir(tmp_path / run, run_config(cfg, 1, "bmg", (0,)).hash())
        states[run] = ckpt.load_latest(directory, template)[1]
    for a, b in zip(jax.tree.leaves(states["full"]), jax.tree.leaves(states["cut"])):
        np.testing.assert_array_equal(a, b)
    first, _ = trainer.run_interval(trainer.init(jnp.asarray([0])))
    boot = jax.tree.leaves(states["full"].bootstrap_opt_state)
    assert boot and max(float(np.max(np.abs(np.asarray(leaf)))) for leaf in boot) > 0
    # It kept changing after interval 1: it persists across meta-updates.
    assert any(np.any(np.asarray(a) != np.asarray(b))
               for a, b in zip(boot, jax.tree.leaves(first.bootstrap_opt_state)))
    look = cfg.env.num_envs * cfg.env.rollout_length
    assert (full["extra_env_steps"] == full["meta_updates"] * look).all()
    assert (full["env_steps"] == (full["meta_updates"] + 1) * look).all()


def test_changed_config_starts_afresh_and_keeps_the_old_checkpoints(tiny, tmp_path):
    run_training(tiny, 1, "a2c", [0], tmp_path / "r", progress=False, stop_after=1)
    other = tiny_config(train={"checkpoint_every": 2})  # another run config, the same program
    assert run_config(other, 1, "a2c", (0,)).hash() != run_config(tiny, 1, "a2c", (0,)).hash()
    frame = run_training(other, 1, "a2c", [0], tmp_path / "r", progress=False, stop_after=1)
    assert frame["interval"].tolist() == [1]  # not resumed from the first config's state
    hashes = sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir())
    code = code_hash(TRAINING_MODULES)
    assert hashes == sorted([f"{run_config(tiny, 1, 'a2c', (0,)).hash()}-{code}",
                             f"{run_config(other, 1, 'a2c', (0,)).hash()}-{code}"])
    # A checkpoint whose manifest says it belongs elsewhere is refused, by path.
    template = jax.eval_shape(make_train(tiny, 1, "a2c").init, jnp.asarray([0]))
    wrong = dict(metrics_io.run_identity(run_config(tiny, 1, "a2c", (0,)), 1, "a2c", [0]),
                 config_hash="0" * 12)
    with pytest.raises(ckpt.CheckpointError, match="interval_000001"):
        ckpt.load_latest(checkpoint_dir(tmp_path / "r", run_config(tiny, 1, "a2c", (0,)).hash()),
                         template, wrong)


def test_changed_training_code_starts_afresh_and_keeps_the_old_checkpoints(tiny, tmp_path,
                                                                          monkeypatch):
    """A rerun after an edit of the training code (what the train rule's code inputs trigger)
    must retrain, not resume from (or overwrite) the checkpoints of other code."""
    run_training(tiny, 1, "a2c", [0], tmp_path, progress=False, stop_after=2)
    old = checkpoint_dir(tmp_path, run_config(tiny, 1, "a2c", (0,)).hash())
    saved = sorted(p.name for p in old.iterdir())
    assert saved and old.name.endswith(code_hash(TRAINING_MODULES))
    monkeypatch.setattr(metrics_io, "code_hash", lambda modules: "edited0code0")
    frame = run_training(tiny, 1, "a2c", [0], tmp_path, progress=False, stop_after=1)
    assert frame["interval"].tolist() == [1]  # not resumed from interval 2 of the other code
    assert sorted(p.name for p in old.iterdir()) == saved  # the old checkpoints are untouched
    new = checkpoint_dir(tmp_path, run_config(tiny, 1, "a2c", (0,)).hash(), "edited0code0")
    assert [p.name for p in new.iterdir()] == ["interval_000001"]


def test_code_hash_follows_the_content_of_the_listed_modules(tmp_path):
    import shutil

    package = tmp_path / "mgrl"
    shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_hash(TRAINING_MODULES, package)
    assert before == code_hash(TRAINING_MODULES) and len(before) == 12
    (package / "analysis.py").write_text("# not a training module\n")
    assert code_hash(TRAINING_MODULES, package) == before
    for module, path in zip(TRAINING_MODULES, map(Path, module_paths(TRAINING_MODULES, package))):
        original = path.read_bytes()
        path.write_bytes(original + b"\n# an edit\n")
        assert code_hash(TRAINING_MODULES, package) != before, module
        path.write_bytes(original)
    assert code_hash(TRAINING_MODULES, package) == before


def test_half_written_checkpoints_of_killed_jobs_are_removed_on_resume(tiny, tmp_path):
    run_training(tiny, 1, "a2c", [0], tmp_path, progress=False, stop_after=1)
    cdir = checkpoint_dir(tmp_path, run_config(tiny, 1, "a2c", (0,)).hash())
    stale = cdir / ".interval_000002.tmp-99999"
    stale.mkdir()
    (stale / "state.npz").write_bytes(b"partial")
    frame = run_training(tiny, 1, "a2c", [0], tmp_path, progress=False)
    assert not stale.exists()
    assert frame["interval"].tolist() == list(range(1, tiny.train.num_intervals + 1))


def test_corrupted_checkpoint_is_reported_by_path(tiny, tmp_path):
    run_training(tiny, 1, "a2c", [0], tmp_path / "r", progress=False, stop_after=1)
    state_file = (checkpoint_dir(tmp_path / "r", run_config(tiny, 1, "a2c", (0,)).hash())
                  / "interval_000001" / "state.npz")
    state_file.write_bytes(state_file.read_bytes()[:100])
    with pytest.raises(ckpt.CheckpointError, match="interval_000001.*corrupted"):
        run_training(tiny, 1, "a2c", [0], tmp_path / "r", progress=False)


def test_damaged_parquet_input_is_reported_by_path_and_nothing_is_written(tiny, tmp_path, capfd):
    run_training(tiny, 1, "a2c", [0], tmp_path / "good", progress=False)
    good = tmp_path / "good" / "metrics.parquet"
    bad = tmp_path / "bad" / "metrics.parquet"
    bad.parent.mkdir()
    bad.write_bytes(good.read_bytes()[:200])  # what a copy cut short leaves
    out = tmp_path / "agg" / "training.parquet"
    # The CLI (`python -m mgrl ...`, what the rules run) in this process: exit code 3 and one
    # line naming the file, no traceback (main returns instead of raising).
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny.to_dict()))
    code = cli_main(["aggregate", "training", "--config", str(config), "--inputs", str(good),
                     str(bad), "--out", str(out), "--table", str(tmp_path / "agg" / "learning.csv")])
    stderr = capfd.readouterr().err
    assert code == 3, stderr
    assert f"cannot read Parquet file {bad}" in stderr
    assert "Traceback" not in stderr
    assert not out.exists() and not (tmp_path / "agg" / "learning.csv").exists()
    # the same file given to a figure is reported the same way
    code = cli_main(["figure", "learning_curves", "--config", str(config), "--training", str(bad),
                     "--out", str(tmp_path / "fig.png")])
    stderr = capfd.readouterr().err
    assert code == 3 and str(bad) in stderr, stderr
    assert not (tmp_path / "fig.png").exists()


def test_cli_trains_and_rejects_bad_arguments(tmp_path, capfd, caplog, monkeypatch):
    """`python -m mgrl train`'s entry point, in-process (the same programs as test_baseline's, built
    once per process; test_kill_resume.py runs it as a subprocess): a bad scheme exits 2 naming the
    key before anything is written; a good run writes its Parquet and logs plain lines when
    stderr is not a terminal."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(dict(tiny_config(horizons=[1], train={"num_intervals": 2},
                                                   probe={"reference_horizon": 1,
                                                          "checkpoints": [1]}).to_dict(),
                                       name="cli", seeds=[0],
                                       schemes={"last": {"kind": "last"}})))
    monkeypatch.setenv("MGRL_JAX_CACHE", "")  # keep this process's cache settings (conftest's)
    caplog.set_level("INFO", logger="mgrl")
    base = ["train", "--config", str(cfg), "--seed", "0"]
    assert cli_main(base + ["--horizon", "1", "--scheme", "median", "--out", str(tmp_path / "x")]) == 2
    stderr = capfd.readouterr().err
    assert "'schemes'" in stderr and "median" in stderr
    assert not (tmp_path / "x").exists()
    assert cli_main(base + ["--horizon", "1", "--scheme", "a2c", "--out", str(tmp_path / "y")]) == 0
    assert "interval 2/2" in caplog.text  # plain log lines when not on a terminal
    assert len(pd.read_parquet(tmp_path / "y" / "metrics.parquet")) == 2


def test_non_finite_run_stops_with_the_run_and_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    import itertools

    from mgrl.train import NonFiniteError, Trainer

    executable = Trainer.executable

    def poisoned(self, state):
        """The compiled interval, with NaN meta-parameters fed to its third call (interval 3)."""
        compiled, calls = executable(self, state), itertools.count(1)

        def run(state, weights):
            if next(calls) == 3:
                state = state._replace(eta=jax.tree.map(lambda x: x * jnp.nan, state.eta))
            return compiled(state, weights)

        return run

    monkeypatch.setattr(Trainer, "executable", poisoned)
    cfg = tiny_config()
    with pytest.raises(NonFiniteError, match=r"horizon=2 scheme=uniform seed\(s\) \[0\] at interval 3"):
        run_training(cfg, 2, "uniform", [0], tmp_path, progress=False)
    cdir = checkpoint_dir(tmp_path, run_config(cfg, 2, "uniform", (0,)).hash())
    latest = ckpt.list_checkpoints(cdir)[-1]
    assert latest.name == "interval_000002"
    template = jax.eval_shape(make_train(cfg, 2, "uniform").init, jnp.asarray([0]))
    _, state, rows = ckpt.load(latest, template)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
    assert not (tmp_path / "metrics.parquet").exists()
