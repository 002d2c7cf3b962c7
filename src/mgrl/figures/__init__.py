"""One module per figure; each exposes ``INPUTS`` (the data it reads) and ``plot(data, out_png)``.

Keeping each figure in its own file lets Snakemake rebuild exactly one figure when its code changes:
the figure's rule lists its module (and ``common.py``) as inputs.
"""

from __future__ import annotations

import ast
from pathlib import Path

FIGURES = ("variance", "bias", "variance_reduction", "learning_curves", "meta_parameters",
           "final_return", "gamma_sensitivity", "meta_samples")


def figures_for(cfg) -> list[str]:
    """The figures an experiment draws: every one of :data:`FIGURES`, but ``meta_samples`` only when
    some scheme averages M > 1 meta-gradient samples (:func:`mgrl.runs.averaged_schemes`)."""
    from mgrl.runs import averaged_schemes

    return [name for name in FIGURES if name != "meta_samples" or averaged_schemes(cfg)]


def figure_inputs(name: str) -> tuple[str, ...]:
    """The ``INPUTS`` tuple of figure module ``name``, read from its source without importing it.

    The Snakefile needs every figure's inputs to build the DAG; importing the modules would load
    matplotlib and pandas (~2.5 s) in every Snakemake process, including the one each cluster job
    starts. ``INPUTS`` must be a literal tuple of strings (checked here and by the tests)."""
    source = (Path(__file__).parent / f"{name}.py").read_text()
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "INPUTS"):
            value = ast.literal_eval(node.value)
            if not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
                raise ValueError(f"mgrl/figures/{name}.py: INPUTS must be a tuple of strings")
            return value
    raise ValueError(f"mgrl/figures/{name}.py defines no literal INPUTS = (...)")
