"""Things that must agree across files: version pins, and schema defaults vs dataclass defaults."""

import re
from pathlib import Path

import yaml

from mgrl.config import AnalysisConfig, ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]


def parse_pins(lines):
    pins = {}
    for line in lines:
        m = re.match(r"^\s*-?\s*\"?([A-Za-z0-9_.\-]+)==([^\",\s;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_conda_env_pins_agree_with_pyproject_and_lock():
    env = yaml.safe_load((ROOT / "envs" / "mgrl.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = parse_pins(pip_section)
    lock = parse_pins((ROOT / "requirements.lock").read_text().splitlines())
    pyproject = parse_pins((ROOT / "pyproject.toml").read_text().splitlines())
    assert len(env_pins) >= 10
    for name, version in env_pins.items():
        assert lock.get(name) == version, f"envs/mgrl.yaml pins {name}=={version}, lock has {lock.get(name)}"
        if name in pyproject:
            assert pyproject[name] == version, f"{name}: pyproject {pyproject[name]} != env {version}"
    for name, version in pyproject.items():
        assert lock.get(name) == version, f"pyproject pins {name}=={version}, lock has {lock.get(name)}"


def test_schema_defaults_equal_dataclass_defaults():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    defaults = {**ExperimentConfig().to_dict(), **AnalysisConfig().to_dict()}  # analysis sections too
    checked = 0
    for key, spec in schema["properties"].items():
        if "properties" in spec:
            for sub, sub_spec in spec["properties"].items():
                assert sub in defaults[key], f"schema has {key}.{sub}, the dataclass does not"
                if "default" in sub_spec:
                    assert sub_spec["default"] == defaults[key][sub], f"{key}.{sub}"
                    checked += 1
            assert set(spec["properties"]) == set(defaults[key]), key
        elif "default" in spec:
            assert spec["default"] == defaults[key], key
            checked += 1
    assert set(schema["properties"]) == set(defaults)
    assert checked > 20


def test_every_shipped_setting_says_where_it_comes_from():
    """config.yaml and config/paper.yaml: each line that sets a value carries a comment."""
    for name in ("config.yaml", "config/paper.yaml"):
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            key, sep, value = code.partition(":")
            sets_a_value = sep and value.strip() and not value.strip().startswith("{kind")
            if sets_a_value:
                assert "#" in line, f"{name}:{number} sets {key.strip()!r} without saying why"
