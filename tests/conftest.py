"""Shared fixtures: tiny boards and networks so the whole suite runs in minutes on 2 CPU cores."""

from __future__ import annotations

import os
from pathlib import Path

# Tests compile many small programs and run them briefly: XLA's cheaper backend optimisation
# compiles them about a third faster, and XLA:CPU's classic loop emitters instead of its newer
# fusion emitters about 40% faster again (a tiny K=2 training program: 6.0 -> 5.6 -> 3.0 s of XLA
# compilation, same results, run time unchanged; docs/testing.md). Subprocesses (Snakemake, SLURM
# and CLI jobs of the tests) inherit them; the pipeline itself runs with XLA's defaults. The one
# test whose cost is running, not compiling, sets its own (tests/test_learning.py).
TEST_XLA_FLAGS = ("--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0 "
                  "--xla_llvm_disable_expensive_passes=true --xla_cpu_use_fusion_emitters=false")
os.environ.setdefault("XLA_FLAGS", TEST_XLA_FLAGS)
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
    """A 5x5 board, 4 environments, 3-step rollouts and a network of a few hundred weights.

    Its environment, network, agent, meta and train settings are those of tests/test_pipeline.py's
    TINY (a test checks it), so the programs this process compiles and those of the Snakemake,
    SLURM and CLI subprocesses are the same ones and the shared compilation cache serves both."""
    raw = {
        "name": "tiny",
        "seeds": [0, 1],
        "horizons": [1, 2, 3],
        "schemes": {
            "last": {"kind": "last"},
            "uniform": {"kind": "uniform"},
            "lambda_0.5": {"kind": "lambda", "rho": 0.5},
        },
        "env": {"num_rows": 5, "num_cols": 5, "time_limit": 8, "num_envs": 4, "rollout_length": 3},
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


# `MGRL_PROFILE_COMPILES=1 pytest ...` prints, per test, the seconds this process spent tracing,
# lowering and compiling with XLA (jax.monitoring events) and the number of XLA compilations (what
# docs/testing.md summarises). Subprocesses (Snakemake, SLURM jobs) are not counted.
_COMPILE_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
                   "/jax/core/compile/backend_compile_duration": "xla"}
_compile_log: dict[str, dict[str, float]] = {}
_current_test = ["(collection)"]

if os.environ.get("MGRL_PROFILE_COMPILES"):
    import jax.monitoring

    def _on_duration(event, seconds, **_):
        kind = _COMPILE_EVENTS.get(event)
        if kind:
            row = _compile_log.setdefault(_current_test[0], {"trace": 0.0, "lower": 0.0, "xla": 0.0,
                                                             "compiles": 0})
            row[kind] += seconds
            row["compiles"] += kind == "xla"

    jax.monitoring.register_event_duration_secs_listener(_on_duration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current_test[0] = item.nodeid
    try:
        return (yield)
    finally:
        _current_test[0] = "(between tests)"


def _session_base(config) -> Path:
    """The session's base temporary folder (the controller's under pytest-xdist)."""
    base = config._tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def pytest_terminal_summary(terminalreporter):
    """The compile profile (MGRL_PROFILE_COMPILES=1): this process's and every xdist worker's."""
    if not os.environ.get("MGRL_PROFILE_COMPILES"):
        return
    import json

    rows = dict(_compile_log)
    for path in sorted(_session_base(terminalreporter.config).glob("compile-profile-*.json")):
        rows.update(json.loads(path.read_text()))
    if not rows:
        return
    ranked = sorted(rows.items(), key=lambda kv: -sum(kv[1][k] for k in ("trace", "lower", "xla")))
    terminalreporter.section("JAX compilation per test (in-process; subprocesses not counted)")
    total = {k: sum(r[k] for _, r in ranked) for k in ("trace", "lower", "xla", "compiles")}
    terminalreporter.write_line(f"total: {total['compiles']:.0f} XLA compilations, trace "
                                f"{total['trace']:.1f}s, lower {total['lower']:.1f}s, xla {total['xla']:.1f}s")
    for name, r in ranked[:25]:
        terminalreporter.write_line(f"{r['trace'] + r['lower'] + r['xla']:7.1f}s  {r['compiles']:4.0f}  {name}")


# Files by cost, longest first (measured with --durations; see docs/testing.md). pytest-xdist's
# `--dist loadfile` runs a file on one worker (its module fixtures are built once) and, with
# `--no-loadscope-reorder` (pyproject.toml), hands files out in this order instead of by number of
# tests, so the tiny Snakemake pipeline (the longest chain) starts at once and the short files fill
# the end. xdist gives a worker a second file at once when its first has at most 2 tests: the
# one-test learning file is third, so the fourth queues behind it (~200 s of a loaded run): the
# kill/resume file (~40 s) goes there, and the estimator file (~100 s) goes to the first worker
# that finishes, not behind the learning test, where it made the tail. Unlisted files (a few
# seconds each) come after the listed ones: a new file of more than ~10 s belongs in the list,
# or it runs alone at the end. The SLURM test comes last:
# its scenario runs in the background from the end of collection on, and the test only checks
# what it recorded.
LONGEST_FIRST = ("test_pipeline.py", "test_train.py", "test_learning.py", "test_kill_resume.py",
                 "test_estimators.py", "test_meta_samples.py", "test_evaluation.py", "test_forward_mode.py",
                 "test_meta_gradient.py", "test_probe.py", "test_outer_critic_training.py",
                 "test_workflow.py", "test_stats.py", "test_consistency.py", "test_gae.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return (item.get_closest_marker("slurm") is not None,
                LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the order within a file is kept


_SLURM_SCENARIO: list = []  # the background scenario process this pytest run started, if any


def _start_slurm_scenario(config, nodeids) -> None:
    if any("test_slurm.py" in nodeid for nodeid in nodeids) and not _SLURM_SCENARIO:
        import test_slurm

        _SLURM_SCENARIO.append(test_slurm.start_scenario(config))


def pytest_collection_finish(session):
    """Start the real-SLURM scenario of tests/test_slurm.py beside the rest of the suite (it waits
    mostly on the scheduler); the test, which runs last, checks its result."""
    if os.environ.get("PYTEST_XDIST_WORKER") or session.config.option.collectonly:
        return  # under pytest-xdist the controller starts it (next hook)
    _start_slurm_scenario(session.config, [item.nodeid for item in session.items])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    _start_slurm_scenario(node.config, ids)


def pytest_sessionfinish(session, exitstatus):
    """Hand an xdist worker's compile profile to the controller; do not leave the SLURM scenario
    (and the daemons it started) behind an interrupted session."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and _compile_log:
        import json

        (_session_base(session.config) / f"compile-profile-{worker}.json").write_text(
            json.dumps(_compile_log))
    for proc in _SLURM_SCENARIO:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except Exception:
                proc.kill()


HOOKS = Path(__file__).resolve().parent / "hooks"


def held_job_env(base: dict, at: int, folder: Path) -> dict:
    """The environment of a job started as a process that holds after saving its checkpoint of
    interval ``at`` until ``folder/release`` exists (tests/hooks/sitecustomize.py)."""
    path = os.pathsep.join(p for p in (str(HOOKS), base.get("PYTHONPATH", "")) if p)
    return dict(base, PYTHONPATH=path, MGRL_TEST_HOLD=f"{at}:{folder}")
