"""Throughput and memory benchmarks: raw environment, policy, A2C baseline, meta-gradient agents,
and Jumanji's own A2C trainer (``jumanji.training``) side by side in the same process.

Prints one JSON line per measurement and writes it to ``--out`` (default
``benchmarks/results.jsonl``), which holds the latest record of each measurement kind: a new record
*replaces* the one of the same kind (same ``name``, ``mode``, ``device``, setting and case fields,
:data:`KIND_FIELDS`) in place, or is appended when there is none; records of other kinds stay.
Every timed case is compiled first (``compile_s`` = lower + XLA compile, reported separately and
never part of a timing; no persistent compilation cache). Then all cases of one setting (board,
batch) run in *interleaved rounds* after one untimed warm-up call each (the case order rotates
every round and reverses every other round), so load from other processes and the after-effects of
the previous case hit every case alike. ``env_steps_per_s`` = environment steps of one call /
median wall time of a call; every ratio is the median of the per-round paired ratios.

Cases (``name``):

* ``env_random``: the raw vectorised environment (``mgrl.env.step`` with auto-reset) with uniformly
  random *legal* actions;
* ``env_policy``: the same plus the policy network's forward pass (``MetaGradientAgent.collect``);
* ``a2c``: our A2C baseline, ``make_train(cfg, 1, "a2c")``, its compiled ``run_interval``;
* ``meta``: the meta-gradient agent, ``make_train(cfg, K, scheme)``, K in --horizons, scheme in
  {last, uniform}; one meta-step (K inner updates) per call;
* ``jumanji_a2c``: Jumanji's own A2C trainer (``A2CAgent.run_epoch`` scanned and ``pmap``-ed exactly
  as ``jumanji/training/train.py``'s ``epoch_fn``) with *our* network plugged into its
  ``ActorCriticNetworks`` (mgrl.networks' modules: separate actor and critic torsos of VALID 2x2
  convolutions, MLP heads), written with ``hk.Conv2D`` (``network.conv_impl: xla``), so both
  sides train the same network with Adam;
* ``jumanji_a2c_same_impl``: the same with our convolution too (``network.conv_impl: matmul``, the
  implementation our own cases use);
* ``jumanji_a2c_stock``: the same trainer with Jumanji's own Snake network
  (``make_actor_critic_networks_snake``) at the same channel and MLP sizes (it differs: first conv
  stride 2, SAME padding, a step-count input);
* ``a2c``/``meta`` with ``comparison: seeds_per_job``: S seeds vmapped in one call
  (``seeds_per_job: S``) against one seed per call (``--seeds-per-job``), where the K sweep runs;
  ratio ``seeds_per_job_speedup``;
* ``memory``: compile-only memory of the meta-gradient agent vs K with ``meta.remat`` on (remat off
  is the timed ``meta`` case of the same K).

The Jumanji trainer is built by ``benchmarks/jumanji_peer.py``, imported only when the peer is
measured. ``peak_bytes`` = temp + argument + output bytes of the compiled executable's
``memory_analysis()`` (XLA's buffer assignment: an upper bound of the live buffers of one call;
donated buffers are counted in both argument and output, ``alias_bytes`` says how many).
``process_max_rss_bytes`` is the process's max RSS (``getrusage``) when the record is written:
monotone over the whole process, so only its growth means anything.

``--profile`` times the pieces of one A2C update (ours and Jumanji's trainer), counts their HLO ops
(and the convolutions XLA:CPU leaves in a non-canonical layout) and XLA's FLOP count, against the
CPU's large-matmul peak.

Usage::

    python benchmarks/bench.py --quick          # < 3 min on 2 cores: 6x6, B=128, small set
    python benchmarks/bench.py                  # 6x6, 12x12 x B 128, 512; K sweep + memory at 6x6/128
    python benchmarks/bench.py --boards 12x12 --batches 512 --meta-settings 12x12:512 \\
        --seeds-per-job 8                       # on a GPU: vmapped seeds per job vs one seed per job
    python benchmarks/bench.py --meta-settings all   # the K sweep on every setting too (slow on CPU)
    python benchmarks/bench.py --profile        # diagnosis: components, HLO ops, FLOP/s

The Jumanji trainer needs the benchmarking venv (``benchmarks/requirements-bench.txt``); without
its packages the ``jumanji_*`` cases are skipped with a note line.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp

from mgrl.env import make_env
from mgrl.config import ExperimentConfig, config_from_dict
from mgrl.train import make_agent, make_train

SCHEMES = ("last", "uniform")

# The network of both sides: Jumanji's Snake defaults (configs/env/snake.yaml: 32 channels, policy
# [64, 64], value [128, 128]) with our 2x2 VALID kernels; the same sizes as [2022] in config.yaml.
# Our cases use our convolution (patches @ matrix, mgrl.networks.PatchConv2D).
NETWORK = {"conv_channels": [32, 32], "kernel_size": 2, "policy_hidden": [64, 64],
           "value_hidden": [128, 128], "conv_impl": "matmul"}
LEARNING_RATE = 3e-4  # Jumanji's snake.yaml a2c.learning_rate (Adam on both sides)


# ------------------------------------------------------------------------------------- output --

# The fields that name a measurement kind: a record replaces the one in --out with the same values.
KIND_FIELDS = ("name", "mode", "device", "board", "num_envs", "rollout_length", "time_limit",
               "horizon", "scheme", "remat", "comparison", "seeds_per_job", "case", "what",
               "component")


def kind(record: dict) -> tuple:
    return tuple(json.dumps(record.get(field)) for field in KIND_FIELDS)


class Recorder:
    """Prints each record as a JSON line; with ``out``, writes it there in place of the record of
    the same :func:`kind` (appended when there is none), so ``out`` keeps the latest of each."""

    def __init__(self, out: Path | None, base: dict):
        self.out = out
        self.base = base

    def emit(self, record: dict) -> dict:
        record = {**record, **self.base,
                  "date": datetime.datetime.now().isoformat(timespec="seconds"),
                  "loadavg_1min": round(os.getloadavg()[0], 2)}
        line = json.dumps(record)
        print(line, flush=True)
        if self.out is not None:
            replace_record(self.out, record)
        return record


def replace_record(path: Path, record: dict) -> None:
    """Write ``record`` into the JSONL file ``path`` where the first record of the same kind was
    (dropping any other of that kind), or at the end; atomically (a temporary file, renamed)."""
    lines = path.read_text().splitlines() if path.exists() else []
    key, out, placed = kind(record), [], False
    for line in filter(str.strip, lines):
        if kind(json.loads(line)) != key:
            out.append(line)
        elif not placed:
            out.append(json.dumps(record))
            placed = True
    if not placed:
        out.append(json.dumps(record))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in out))
    os.replace(tmp, path)


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def memory_fields(compiled) -> dict:
    stats = compiled.memory_analysis()
    if stats is None:
        return {"peak_bytes": None}
    temp, arg = int(stats.temp_size_in_bytes), int(stats.argument_size_in_bytes)
    out, alias = int(stats.output_size_in_bytes), int(stats.alias_size_in_bytes)
    return {"peak_bytes": temp + arg + out, "temp_bytes": temp, "argument_bytes": arg,
            "output_bytes": out, "alias_bytes": alias,
            "peak_bytes_source": "xla memory_analysis temp+argument+output"}


NONCANONICAL_CONV = re.compile(r"convolution\([^\n]*dim_labels=(?!b01f_01io->b01f|b01f_01oi->b01f)")


def xla_flops(compiled) -> float:
    """Floating-point operations of one call by XLA's cost analysis (a ``while`` body, e.g. a
    ``lax.scan`` step, is counted once, so only loop-free programs are counted exactly)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan")))


def hlo_stats(compiled) -> dict:
    """Op counts of the optimised HLO. ``noncanonical_convs``: convolutions whose dimension order
    is not the NHWC/HWIO one XLA:CPU hands to its fast (Eigen) kernel."""
    text = compiled.as_text()
    counts = {op: len(re.findall(rf"\s{op}\(", text))
              for op in ("convolution", "dot", "while", "fusion", "gather", "scatter")}
    counts["noncanonical_convs"] = len(NONCANONICAL_CONV.findall(text))
    return counts


# -------------------------------------------------------------------------------------- cases --

@dataclasses.dataclass
class Case:
    name: str
    fields: dict  # horizon, scheme, network, ...
    call: Callable[[Any], Any]  # state -> state (blocks until ready)
    state: Any
    env_steps_per_call: int
    compile_s: float
    memory: dict
    rounds: int = 3
    times: list = dataclasses.field(default_factory=list)
    hlo: dict | None = None


def our_config(rows: int, cols: int, num_envs: int, rollout_length: int, time_limit: int,
               updates: int, remat: bool = False) -> ExperimentConfig:
    return config_from_dict({
        "name": "bench",
        "horizons": [1, 2, 4, 8],
        "schemes": {s: {"kind": s} for s in SCHEMES},
        "env": {"num_rows": rows, "num_cols": cols, "time_limit": time_limit,
                "num_envs": num_envs, "rollout_length": rollout_length},
        "network": NETWORK,
        "agent": {"optimizer": "adam", "learning_rate": LEARNING_RATE},
        "meta": {"learn": ["gamma"], "remat": remat},
        "train": {"inner_updates_per_interval": updates},
        "probe": {"reference_horizon": 8},
    })


def _timed_compile(jitted, *args):
    t = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - t


def _fresh(tree):
    """Own copies of every leaf: eagerly built states may share one buffer between leaves, which
    a donating call rejects ("donate the same buffer twice")."""
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def _first(out):
    return jax.block_until_ready(out)[0]


def case_env_random(cfg: ExperimentConfig, updates: int) -> Case:
    env = make_env(cfg.env)
    n = updates * cfg.env.rollout_length

    def run(state):
        carry, key = state
        key, sub = jax.random.split(key)

        def one(carry, k):
            logits = jnp.where(carry.action_mask, 0.0, -1e9)
            action = jax.random.categorical(k, logits).astype(jnp.int32)
            carry, tr = env.step(carry, action)
            return carry, jnp.sum(tr.reward)

        carry, rewards = jax.lax.scan(one, carry, jax.random.split(sub, n))
        return (carry, key), jnp.sum(rewards)

    state = _fresh((env.reset(jax.random.PRNGKey(0), cfg.env.num_envs),
                    jax.random.PRNGKey(1)))
    compiled, compile_s = _timed_compile(jax.jit(run, donate_argnums=0), state)
    return Case("env_random", {}, lambda s: _first(compiled(s)), state,
                n * cfg.env.num_envs, compile_s, memory_fields(compiled))


def case_env_policy(cfg: ExperimentConfig, updates: int) -> Case:
    agent = make_agent(cfg)

    def run(state):
        params, carry, key = state
        key, sub = jax.random.split(key)

        def one(carry, k):
            carry, rollout = agent.collect(params, carry, k)
            return carry, jnp.sum(rollout.transitions.reward)

        carry, rewards = jax.lax.scan(one, carry, jax.random.split(sub, updates))
        return (params, carry, key), jnp.sum(rewards)

    carry = agent.env.reset(jax.random.PRNGKey(0), cfg.env.num_envs)
    params = agent.network.init(jax.random.PRNGKey(2), carry.observation[:1], carry.action_mask[:1])
    state = _fresh((params, carry, jax.random.PRNGKey(1)))
    compiled, compile_s = _timed_compile(jax.jit(run, donate_argnums=0), state)
    return Case("env_policy", {}, lambda s: _first(compiled(s)), state,
                updates * cfg.env.rollout_length * cfg.env.num_envs, compile_s,
                memory_fields(compiled))


def case_ours(cfg: ExperimentConfig, horizon: int, scheme: str, seeds: int = 1,
              comparison: str | None = None) -> Case:
    """Our Trainer's compiled run_interval (cfg.train.inner_updates_per_interval updates a call),
    with ``seeds`` seeds vmapped in one call (what one job of ``seeds_per_job`` seeds runs);
    ``comparison`` names the measurement the case is part of (a field of its record and kind)."""
    trainer = make_train(cfg, horizon, scheme, reuse=False)  # a fresh compile is timed
    state = _fresh(trainer.init(jnp.arange(seeds)))
    t = time.perf_counter()
    compiled = trainer.executable(state)  # called as compiled(state, weights)
    compile_s = time.perf_counter() - t
    name = "a2c" if scheme == "a2c" else "meta"
    fields = {"horizon": horizon, "scheme": scheme, "remat": cfg.meta.remat}
    if comparison is not None:
        fields["comparison"] = comparison
    if seeds != 1:
        fields["seeds_per_job"] = seeds
    return Case(name, fields, lambda s: _first(compiled(s, trainer.weights)), state,
                trainer.env_steps_per_interval * seeds, compile_s, memory_fields(compiled),
                hlo=hlo_stats(compiled))


def memory_only(cfg: ExperimentConfig, horizon: int, scheme: str) -> dict:
    trainer = make_train(cfg, horizon, scheme, reuse=False)  # a fresh compile is timed
    template = jax.eval_shape(trainer.init, jnp.asarray([0]))
    t = time.perf_counter()
    compiled = trainer.executable(template)
    compile_s = time.perf_counter() - t
    return {"compile_s": round(compile_s, 2), **memory_fields(compiled)}


# ------------------------------------------------------------------------ Jumanji's own trainer --

def _peer():
    """benchmarks/jumanji_peer.py, imported only when the peer is measured."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import jumanji_peer

    return jumanji_peer


def jumanji_unavailable() -> str | None:
    """None when Jumanji's trainer can run here, else why not (its extra packages are missing)."""
    return _peer().unavailable()


def case_jumanji(cfg: ExperimentConfig, updates: int, network: str = "ours",
                 conv_impl: str = "xla") -> Case:
    """Jumanji's A2C trainer (its ``epoch_fn``, ``updates`` updates a call): ``network`` ``ours``
    with ``conv_impl`` ``xla`` (``jumanji_a2c``) or ``matmul`` (``jumanji_a2c_same_impl``), or
    ``stock`` (``jumanji_a2c_stock``)."""
    program = _peer().epoch_program(cfg, updates, network, conv_impl)
    if network == "stock":
        name, fields = "jumanji_a2c_stock", {"network": "jumanji_snake_cnn"}
    elif conv_impl == "matmul":
        name, fields = "jumanji_a2c_same_impl", {"network": "ours", "network_impl": "matmul"}
    else:
        name, fields = "jumanji_a2c", {"network": "ours"}
    compiled = program.compiled
    return Case(name, {"horizon": 1, "scheme": "a2c", **fields}, lambda s: _first(compiled(s)),
                program.state, updates * cfg.env.rollout_length * cfg.env.num_envs,
                program.compile_s, memory_fields(compiled), hlo=hlo_stats(compiled))


# --------------------------------------------------------------------------------- the runner --

def run_interleaved(cases: list[Case]) -> None:
    for c in cases:  # one untimed call each: first-call allocations, page faults
        t = time.perf_counter()
        c.state = c.call(c.state)
        _log(f"warm-up {c.name} {c.fields}: {time.perf_counter() - t:.2f}s "
             f"(compile {c.compile_s:.1f}s)")
    for r in range(max(c.rounds for c in cases)):
        shift = r % len(cases)
        order = cases[shift:] + cases[:shift]
        # reversed every other round: of two cases, each runs first as often as second (a case
        # run right after one with large buffers can be up to 5% slower)
        for c in (order[::-1] if r % 2 else order):
            if len(c.times) < c.rounds:
                t = time.perf_counter()
                c.state = c.call(c.state)
                c.times.append(time.perf_counter() - t)


def _paired(num: Case, den: Case) -> list[float]:
    """Per-round (env-steps/s of num) / (env-steps/s of den), over the rounds both ran."""
    return [(num.env_steps_per_call / tn) / (den.env_steps_per_call / td)
            for tn, td in zip(num.times, den.times)]


def paired_ratio(num: Case, den: Case) -> float:
    return statistics.median(_paired(num, den))


def paired_time_ratio(num: Case, den: Case) -> float:
    """Median over rounds of (seconds per env step of num) / (seconds per env step of den)."""
    return statistics.median(1.0 / r for r in _paired(num, den))


def abba_time_ratio(num: Case, den: Case, rounds: int) -> float:
    """Median over ``rounds`` of num's / den's time per env step, the two run back to back in
    alternating order (AB, BA, ...): a dedicated pair measurement after the interleaved rounds, so
    that neither always follows the other (its times are not added to the cases' records)."""
    ratios = []
    for r in range(rounds):
        times = {}
        for c in ((num, den) if r % 2 == 0 else (den, num)):
            t = time.perf_counter()
            c.state = c.call(c.state)
            times[id(c)] = time.perf_counter() - t
        ratios.append((times[id(num)] / num.env_steps_per_call)
                      / (times[id(den)] / den.env_steps_per_call))
    return statistics.median(ratios)


def case_record(c: Case, setting: dict) -> dict:
    med = statistics.median(c.times)
    rec = {"name": c.name, **setting, "horizon": None, "scheme": None, **c.fields,
           "env_steps_per_s": round(c.env_steps_per_call / med, 1),
           "compile_s": round(c.compile_s, 2), **c.memory,
           "seconds_per_call": round(med, 4), "seconds_per_call_min": round(min(c.times), 4),
           "seconds_per_call_max": round(max(c.times), 4), "rounds": len(c.times),
           "env_steps_per_call": c.env_steps_per_call,
           "process_max_rss_bytes": max_rss_bytes()}
    if c.hlo is not None:
        rec["hlo_ops"] = c.hlo
    return rec


def _ratio(rec: Recorder, setting: dict, what: str, value: float, **extra) -> float:
    value = round(value, 3)
    rec.emit({"name": "ratio", **setting, "what": what, "value": value, **extra})
    return value


def bench_setting(rec: Recorder, rows: int, cols: int, num_envs: int, args, jumanji_note,
                  base_cases: bool, meta_cases: bool) -> dict:
    """The timed cases of one (board, batch), interleaved; returns the summary ratios."""
    T = args.rollout_length
    setting = {"board": f"{rows}x{cols}", "num_envs": num_envs, "rollout_length": T,
               "time_limit": args.time_limit}
    upc = args.updates_per_call
    cfg = our_config(rows, cols, num_envs, T, args.time_limit, upc)
    cases: list[Case] = []
    a2c = jum = jum_same = stock = envp = None
    if base_cases:
        cases.append(case_env_random(cfg, upc))
        envp = case_env_policy(cfg, upc)
        cases.append(envp)
        a2c = case_ours(cfg, 1, "a2c")
        cases.append(a2c)
        if jumanji_note is None:
            jum = case_jumanji(cfg, upc, "ours", "xla")
            cases.append(jum)
            jum_same = case_jumanji(cfg, upc, "ours", "matmul")
            cases.append(jum_same)
            if args.stock:
                stock = case_jumanji(cfg, upc, "stock")
                cases.append(stock)
        for c in cases:
            c.rounds = args.rounds
    meta: dict[tuple[int, str], Case] = {}
    if meta_cases:
        for K in args.horizons:  # one meta-step (K inner updates) per call
            cfg_k = our_config(rows, cols, num_envs, T, args.time_limit, K)
            for scheme in (SCHEMES if K > 1 else ("last",)):
                c = case_ours(cfg_k, K, scheme)
                c.rounds = args.meta_rounds
                meta[(K, scheme)] = c
                _log(f"compiled meta K={K} {scheme}: {c.compile_s:.1f}s")
        cases += list(meta.values())
    run_interleaved(cases)
    for c in cases:
        rec.emit(case_record(c, setting))

    summary = dict(setting)
    if jum is not None:
        summary["a2c_over_jumanji"] = _ratio(
            rec, setting, "a2c_over_jumanji", paired_ratio(a2c, jum), target=">= 1.5",
            meaning="our a2c env-steps/s / Jumanji A2C trainer env-steps/s, same network")
    if jum_same is not None:
        summary["a2c_over_jumanji_same_impl"] = _ratio(
            rec, setting, "a2c_over_jumanji_same_impl", paired_ratio(a2c, jum_same),
            meaning="our a2c / Jumanji's trainer with our network AND our patch+matmul convolution")
    if stock is not None:
        summary["a2c_over_jumanji_stock"] = _ratio(
            rec, setting, "a2c_over_jumanji_stock", paired_ratio(a2c, stock),
            meaning="our a2c (our network) / Jumanji's trainer with its own Snake network")
    if a2c is not None:
        summary["a2c_over_env_policy"] = round(paired_ratio(a2c, envp), 4)
    for K in args.horizons:
        if K > 1 and meta:
            summary[f"uniform_over_last_K{K}"] = _ratio(
                rec, setting, "uniform_over_last",
                abba_time_ratio(meta[(K, "uniform")], meta[(K, "last")], args.meta_rounds),
                horizon=K, target="<= 1.05", rounds=args.meta_rounds,
                meaning="time per env step, uniform / last, same K; back-to-back ABBA rounds")
    if (1, "last") in meta:
        for K in args.horizons:
            if K > 1:
                summary[f"time_per_update_K{K}_over_K1"] = _ratio(
                    rec, setting, "time_per_inner_update_over_K1",
                    paired_time_ratio(meta[(K, "last")], meta[(1, "last")]), horizon=K,
                    scheme="last",
                    meaning="seconds per inner update at K / at K=1 (1.0 = exactly linear in K)")
        ks = [K for K in args.horizons if K >= 2]
        for a, b in zip(ks, ks[1:]):
            summary[f"call_time_K{b}_over_K{a}"] = _ratio(
                rec, setting, f"call_time_K{b}_over_K{a}",
                paired_time_ratio(meta[(b, "last")], meta[(a, "last")]) * b / a, scheme="last",
                meaning=f"time of one K={b} meta-step / one K={a} meta-step (linear in K = {b / a:g})")
        if a2c is not None:
            summary["meta_K1_over_a2c_time"] = round(paired_time_ratio(meta[(1, "last")], a2c), 3)
    if meta and args.memory_horizons:
        bench_memory(rec, setting, cfg, args, meta)
    return summary


def bench_seeds_per_job(rec: Recorder, rows: int, cols: int, num_envs: int, args) -> dict:
    """Throughput of S seeds vmapped in one job vs one seed per job (``seeds_per_job``), for the
    a2c baseline and the K = 4 ``uniform`` agent, interleaved. ``env_steps_per_s`` counts all
    seeds of the call, so the ratio is the gain in total throughput of one device."""
    S, T = args.seeds_per_job, args.rollout_length
    setting = {"board": f"{rows}x{cols}", "num_envs": num_envs, "rollout_length": T,
               "time_limit": args.time_limit}
    cfg = our_config(rows, cols, num_envs, T, args.time_limit, args.updates_per_call)
    cfg_meta = our_config(rows, cols, num_envs, T, args.time_limit, 4)
    of = "seeds_per_job"  # the comparison: a field of these records, part of their kind
    pairs = {"a2c": (case_ours(cfg, 1, "a2c", S, of), case_ours(cfg, 1, "a2c", 1, of)),
             "meta_K4_uniform": (case_ours(cfg_meta, 4, "uniform", S, of),
                                 case_ours(cfg_meta, 4, "uniform", 1, of))}
    cases = [c for pair in pairs.values() for c in pair]
    for c in cases:
        c.rounds = args.rounds
    run_interleaved(cases)
    summary = {}
    for c in cases:
        rec.emit(case_record(c, setting))
    for what, (many, one) in pairs.items():
        summary[f"seeds_per_job_speedup_{what}"] = _ratio(
            rec, setting, "seeds_per_job_speedup", paired_ratio(many, one), case=what,
            seeds_per_job=S, target=">= 4 on a GPU",
            meaning=f"env-steps/s of {S} seeds vmapped in one call / of one seed per call")
    return summary


def bench_memory(rec: Recorder, setting: dict, cfg: ExperimentConfig, args, meta) -> None:
    """Peak memory of one meta-step vs K: remat off (the timed case) and on (compile only)."""
    peaks = {}
    for K in args.memory_horizons:
        if (K, "last") in meta:
            peaks[(K, False)] = meta[(K, "last")].memory["peak_bytes"]
        cfg_k = our_config(cfg.env.num_rows, cfg.env.num_cols, cfg.env.num_envs,
                           cfg.env.rollout_length, cfg.env.time_limit, K, remat=True)
        m = memory_only(cfg_k, K, "last")
        peaks[(K, True)] = m["peak_bytes"]
        rec.emit({"name": "memory", **setting, "horizon": K, "scheme": "last", "remat": True,
                  "env_steps_per_s": None, **m,
                  "note": "compile only; one meta-step per call (inner_updates_per_interval = K)"})
    ks = list(args.memory_horizons)
    for remat in (False, True):
        if all((k, remat) in peaks for k in ks) and len(ks) > 1:
            k0, k1 = ks[0], ks[-1]
            _ratio(rec, setting, f"peak_bytes_K{k1}_over_K{k0}",
                   peaks[(k1, remat)] / peaks[(k0, remat)], remat=remat,
                   meaning=f"peak bytes of one meta-step, K={k1} / K={k0} (linear = {k1 / k0:g})")
            _ratio(rec, setting, f"temp_bytes_per_K_slope_over_K{k0}",
                   (peaks[(k1, remat)] - peaks[(k0, remat)]) / (k1 - k0) / peaks[(k0, remat)],
                   remat=remat, meaning="extra peak bytes per extra K, relative to the K0 peak")


# -------------------------------------------------------------------------------- profiling --

def _best(compiled, args_, repeats: int) -> float:
    jax.block_until_ready(compiled(*args_))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(compiled(*args_))
        best = min(best, time.perf_counter() - t)
    return best


def profile(rec: Recorder, rows: int, cols: int, num_envs: int, args, jumanji_note) -> None:
    """Where the time of one A2C update goes: its pieces, ours and Jumanji's trainer (our
    network), each the best of ``--profile-repeats`` calls, with HLO op counts, XLA's FLOP count
    (ours) and the CPU's float32 matmul peak for scale."""
    T = args.rollout_length
    setting = {"board": f"{rows}x{cols}", "num_envs": num_envs, "rollout_length": T,
               "time_limit": args.time_limit}
    cfg = our_config(rows, cols, num_envs, T, args.time_limit, 1)
    a2c_cfg = dataclasses.replace(cfg, meta=dataclasses.replace(cfg.meta, learn=()))
    agent = make_agent(a2c_cfg)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    gamma = jax.nn.sigmoid(state.eta["gamma"])
    lam = jax.nn.sigmoid(state.eta["lambda"])
    w1 = jnp.ones((1,), jnp.float32)

    def inner(s):
        return agent.inner_update(s.params, s.inner_opt_state, s.rollout, gamma, lam)[:2]

    comps = {
        "ours/collect: T policy steps + env": lambda s: agent.collect(s.params, s.env, s.key),
        "ours/inner_update: one pass fwd+bwd+adam (targets and l_k from the same pass)": inner,
        "ours/meta_step a2c: one whole update": lambda s: agent.meta_step(s, w1),
        "ours/inner_update inside lax.scan(length=1)": lambda s: jax.lax.scan(
            lambda c, _: (inner(s._replace(params=c[0], inner_opt_state=c[1])), None),
            (s.params, s.inner_opt_state), None, length=1)[0],
    }
    for label, fn in comps.items():
        compiled = jax.jit(fn).lower(state).compile()
        seconds = _best(compiled, (state,), args.profile_repeats)
        flops = xla_flops(compiled)
        rec.emit({"name": "profile", **setting, "component": label, "seconds": round(seconds, 5),
                  "xla_flops": flops, "gflops_per_s": round(flops / seconds / 1e9, 1),
                  "hlo_ops": hlo_stats(compiled), **memory_fields(compiled)})
    # What the CPU can do at best: one large float32 matrix multiply.
    n = 2048
    big = jnp.ones((n, n), jnp.float32)
    matmul = jax.jit(lambda a: a @ a).lower(big).compile()
    seconds = _best(matmul, (big,), max(args.profile_repeats, 5))
    rec.emit({"name": "profile", **setting, "component": f"peak: float32 matmul {n}x{n}",
              "seconds": round(seconds, 5), "xla_flops": 2 * n ** 3,
              "gflops_per_s": round(2 * n ** 3 / seconds / 1e9, 1)})
    if jumanji_note is None:
        for label, program in _peer().component_programs(cfg).items():
            seconds = _best(program.compiled, (program.state,), args.profile_repeats)
            rec.emit({"name": "profile", **setting, "component": label,
                      "seconds": round(seconds, 5), "hlo_ops": hlo_stats(program.compiled),
                      **memory_fields(program.compiled)})


# ------------------------------------------------------------------------------------- main --

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--quick", action="store_true",
                   help="6x6, B=128: env, a2c, Jumanji, K=4 last/uniform; < 3 min on 2 cores")
    p.add_argument("--profile", action="store_true",
                   help="diagnosis only: update components, HLO op counts, FLOP/s (6x6, B=128)")
    p.add_argument("--out", default="benchmarks/results.jsonl",
                   help="JSONL file of the latest record of each kind: a record replaces the "
                        "one of its kind, else is appended ('' = print only)")
    p.add_argument("--boards", default=None, help="comma list (default 6x6,12x12; quick 6x6)")
    p.add_argument("--batches", default=None, help="comma list of num_envs (default 128,512)")
    p.add_argument("--meta-settings", default="6x6:128",
                   help="BOARD:B list (or 'all') where the K sweep and memory run")
    p.add_argument("--horizons", default=None, help="K sweep (default 1,2,4,8; quick 4)")
    p.add_argument("--memory-horizons", default=None, help="K for remat memory (default = horizons)")
    p.add_argument("--rollout-length", type=int, default=8,
                   help="T, also Jumanji's n_steps (config.yaml: 8)")
    p.add_argument("--time-limit", type=int, default=500)
    p.add_argument("--updates-per-call", type=int, default=None,
                   help="inner updates per timed call of env/a2c/Jumanji (default 1; quick 8)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds of env/a2c/Jumanji cases")
    p.add_argument("--meta-rounds", type=int, default=None, help="timed rounds of meta cases (5)")
    p.add_argument("--profile-repeats", type=int, default=3)
    p.add_argument("--seeds-per-job", type=int, default=None,
                   help="S > 1: also time S vmapped seeds vs 1 per call where the K sweep runs "
                        "(default 8; quick 0 = skip)")
    p.add_argument("--no-stock", dest="stock", action="store_false",
                   help="skip Jumanji's trainer with its own Snake network")
    args = p.parse_args(argv)

    def ints(s):
        return tuple(int(x) for x in s.split(",") if x)

    if args.quick:
        boards = (args.boards or "6x6").split(",")
        batches = list(ints(args.batches or "128"))
        args.horizons = ints(args.horizons or "4")
        args.memory_horizons = ints(args.memory_horizons or "")
        args.updates_per_call = args.updates_per_call or 8
        args.meta_rounds = args.meta_rounds or 5
        args.stock = False
        args.seeds_per_job = args.seeds_per_job or 0
        meta_settings = {(b, n) for b in boards for n in batches}
    else:
        boards = (args.boards or ("6x6" if args.profile else "6x6,12x12")).split(",")
        batches = list(ints(args.batches or ("128" if args.profile else "128,512")))
        args.horizons = ints(args.horizons or "1,2,4,8")
        args.memory_horizons = ints(args.memory_horizons or ",".join(map(str, args.horizons)))
        args.updates_per_call = args.updates_per_call or 1
        args.meta_rounds = args.meta_rounds or 5
        args.seeds_per_job = 8 if args.seeds_per_job is None else args.seeds_per_job
        if args.meta_settings == "all":
            meta_settings = {(b, n) for b in boards for n in batches}
        else:
            meta_settings = {(s.split(":")[0], int(s.split(":")[1]))
                             for s in args.meta_settings.split(",") if s}

    base = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
            "cpu_count": os.cpu_count(), "jax_version": jax.__version__,
            "jaxlib_version": _version("jaxlib"), "jumanji_version": _version("jumanji"),
            "haiku_version": _version("dm-haiku"), "python": platform.python_version(),
            "mode": "quick" if args.quick else ("profile" if args.profile else "full"),
            "network_sizes": "conv 32,32 k2 VALID; policy 64,64; value 128,128"}
    rec = Recorder(Path(args.out) if args.out else None, base)
    jumanji_note = jumanji_unavailable()
    if jumanji_note is not None:
        rec.emit({"name": "note",
                  "note": f"Jumanji trainer unavailable, its cases skipped: {jumanji_note}"})
    t_start = time.perf_counter()

    if args.profile:
        for board in boards:
            r, c = ints(board.replace("x", ","))
            for b in batches:
                profile(rec, r, c, b, args, jumanji_note)
        _log(f"profile done in {time.perf_counter() - t_start:.0f}s")
        return 0

    summaries = []
    for board in boards:
        r, c = ints(board.replace("x", ","))
        for b in batches:
            summaries.append(bench_setting(rec, r, c, b, args, jumanji_note, base_cases=True,
                                           meta_cases=(board, b) in meta_settings))
            if args.seeds_per_job > 1 and (board, b) in meta_settings:
                summaries[-1].update(bench_seeds_per_job(rec, r, c, b, args))
            _log(f"{board} B={b} done at {time.perf_counter() - t_start:.0f}s")

    # The LAST line: the headline ratios (the first setting that has them).
    def first_with(key):
        return next((s[key] for s in summaries if s.get(key) is not None), None)

    k_ratio = 4 if 4 in args.horizons else max(args.horizons)
    rec.emit({"name": "summary",
              "a2c_over_jumanji": first_with("a2c_over_jumanji"),
              "a2c_over_jumanji_same_impl": first_with("a2c_over_jumanji_same_impl"),
              "uniform_over_last": first_with(f"uniform_over_last_K{k_ratio}"),
              "uniform_over_last_horizon": k_ratio,
              "seeds_per_job_speedup": first_with("seeds_per_job_speedup_meta_K4_uniform"),
              "targets": {"a2c_over_jumanji": ">= 1.5", "uniform_over_last": "<= 1.05"},
              "settings": summaries,
              "total_wall_s": round(time.perf_counter() - t_start, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
