"""The README's promises that code can check: CI runs its test command; its column table is current."""

import re
from pathlib import Path

import pytest

from mgrl.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command_verbatim():
    install_and_run, install_and_test = quick_start_commands()
    assert install_and_test.endswith("pytest -q")
    assert install_and_run.endswith("snakemake --cores 2")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines


@pytest.mark.parametrize("kind", ["training", "probe-summary", "probe-samples"])
def test_readme_column_tables_match_the_code(kind, capsys):
    # the README's command (`python -m mgrl columns --kind ...`), run in this process
    assert main(["columns", "--kind", kind]) == 0
    out = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    for line in out.strip().splitlines()[2:]:
        assert line in readme, f"README {kind} column table is out of date: {line}"


def test_readme_claims_table_is_the_committed_run_output():
    claims = (ROOT / "docs" / "claims.md").read_text()
    assert claims.startswith("| claim |") and claims.count("\n") >= 6
    assert claims in (ROOT / "README.md").read_text()


def test_readme_extra_estimator_rows_are_the_committed_estimators_run_output():
    claims = (ROOT / "docs" / "estimators" / "claims.md").read_text().splitlines()
    extra = [line for line in claims if line.startswith("| E")]
    assert len(extra) == 8  # 2 extra estimators x (last, uniform) x (E1, E2)
    readme = (ROOT / "README.md").read_text()
    for line in extra:
        assert line in readme, line
