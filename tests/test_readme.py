"""The documentation's promises that code can check: CI runs the README's test command; the column
tables of docs/outputs.md are current; the claims tables are the committed runs' output; every
relative link in README.md and docs/*.md points to a file that exists."""

import re
from pathlib import Path

import pytest

from mgrl.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


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
def test_output_column_tables_match_the_code(kind, capsys):
    # the documented command (`python -m mgrl columns --kind ...`), run in this process
    assert main(["columns", "--kind", kind]) == 0
    out = capsys.readouterr().out
    outputs = (ROOT / "docs" / "outputs.md").read_text()
    for line in out.strip().splitlines()[2:]:
        assert line in outputs, f"docs/outputs.md {kind} column table is out of date: {line}"


@pytest.mark.parametrize("table", ["claims.md", "claims_replicated.md"])
def test_readme_claims_tables_are_the_committed_run_output(table):
    claims = (ROOT / "docs" / table).read_text()
    assert claims.startswith("| claim |") and claims.count("\n") >= 6
    assert claims in (ROOT / "README.md").read_text()


def test_extra_estimator_rows_are_the_committed_estimators_run_output():
    claims = (ROOT / "docs" / "estimators" / "claims.md").read_text().splitlines()
    extra = [line for line in claims if line.startswith("| E")]
    assert len(extra) == 8  # 2 extra estimators x (last, uniform) x (E1, E2)
    page = (ROOT / "docs" / "estimators.md").read_text()
    for line in extra:
        assert line in page, line


def relative_links(text):
    """Targets of inline Markdown links and images, outside fenced code blocks and code spans."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    for target in re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # http(s), mailto: and links within the page
        yield target


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page):
    links = list(relative_links(page.read_text()))
    missing = [link for link in links if not (page.parent / link.split("#")[0]).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_link_check_sees_links():
    text = "[a](docs/x.md#y) ![b](f.png) [c](https://e.org) [d](#top) `[e](no.md)`\n```\n[f](no.md)\n```"
    assert list(relative_links(text)) == ["docs/x.md#y", "f.png"]
