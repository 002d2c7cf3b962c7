"""Which source modules each pipeline stage runs, and a content hash of them.

The Snakemake rules list these files as inputs, so editing the code behind a stage reruns that
stage's jobs and everything downstream (and nothing upstream); training stamps the hash of its
modules on every checkpoint, so a rerun after a code change starts afresh instead of resuming
from a checkpoint written by other code. No heavy imports here: the Snakefile imports it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

# Modules whose content determines a stage's numbers: the estimators package decides what each
# scheme computes (its defaults included: mgrl.estimators.resolve) and runs what each run is.
# config.py and metrics.py are not listed: the settings a job uses, defaults filled in, are
# already a Snakemake param and part of the config hash.
ESTIMATOR_MODULES = tuple(sorted(
    f"estimators.{path.stem}" for path in (PACKAGE_DIR / "estimators").glob("*.py")))
PROBE_PACKAGE = tuple(sorted(f"probe.{path.stem}" for path in (PACKAGE_DIR / "probe").glob("*.py")))
TRAINING_MODULES = (("env", "networks", "losses") + ESTIMATOR_MODULES
                    + ("runs", "agent", "evaluation", "train"))
PROBE_MODULES = TRAINING_MODULES + PROBE_PACKAGE + ("stats",)  # stats: the per-state statistics
ANALYSIS_MODULES = ("analysis", "claim_support", "stats")


def module_paths(modules: tuple[str, ...], package_dir: str | Path = PACKAGE_DIR) -> list[str]:
    """Absolute paths of ``modules`` (names relative to the mgrl package, e.g. ``"agent"``)."""
    return [str(Path(package_dir) / f"{name.replace('.', '/')}.py") for name in modules]


def code_hash(modules: tuple[str, ...] = TRAINING_MODULES, package_dir: str | Path = PACKAGE_DIR) -> str:
    """sha256 prefix (12 hex digits) over the names and bytes of ``modules``' source files."""
    digest = hashlib.sha256()
    for name, path in zip(modules, module_paths(modules, package_dir)):
        digest.update(name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()[:12]
