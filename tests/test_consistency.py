"""Things that must agree across files: version pins, and the config schema vs the settings."""

import re
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate as snakemake_validate

from mgrl import schema
from mgrl.config import AnalysisConfig, ConfigError, ExperimentConfig, config_from_dict

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


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


def test_committed_schema_and_key_reference_are_generated_from_the_settings():
    assert (ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text() == schema.schema_yaml(), \
        "run: python -m mgrl schema > workflow/schemas/config.schema.yaml"
    assert (ROOT / "config" / "README.md").read_text() == schema.config_reference(), \
        "run: python -m mgrl config-docs > config/README.md"


def test_schema_fills_in_exactly_the_dataclass_defaults():
    data = {}
    snakemake_validate(data, str(SCHEMA), set_default=True)  # what the Snakefile runs
    expected = {**ExperimentConfig().to_dict(), **AnalysisConfig().to_dict()}
    expected["schemes"] = {"last": {"kind": "last"}}  # unset scheme fields stay unset
    assert data == expected


def constrained_keys():
    """(dotted key, a value that breaks its constraint) for every bounded or enumerated setting."""
    cases = []

    def breaking(constraints, number):
        if "enum" in constraints:
            return "not-an-option"
        for bound, step in (("minimum", -1), ("exclusiveMinimum", 0), ("maximum", 1),
                            ("exclusiveMaximum", 0)):
            if bound in constraints:
                return constraints[bound] + (step if number == "integer" else step * 0.5)
        return None

    def walk(properties, prefix):
        for name, spec in properties.items():
            if "properties" in spec:
                walk(spec["properties"], f"{prefix}{name}.")
                continue
            kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
            if "array" in kinds and isinstance(spec.get("items"), dict):
                bad = breaking(spec["items"], spec["items"]["type"])
                if bad is not None:
                    cases.append((f"{prefix}{name}", [bad]))
            elif "array" not in kinds and "object" not in kinds:
                bad = breaking(spec, kinds[0])
                if bad is not None:
                    cases.append((f"{prefix}{name}", bad))

    properties = yaml.safe_load(SCHEMA.read_text())["properties"]
    walk(properties, "")
    walk(properties["schemes"]["additionalProperties"]["properties"], "schemes.x.")
    return cases


@pytest.mark.parametrize("key, value", constrained_keys())
def test_schema_and_loader_reject_the_same_out_of_range_values(key, value):
    raw = {"seeds": [0], "horizons": [1], "schemes": {"last": {"kind": "last"}},
           "probe": {"reference_horizon": 1, "checkpoints": [1]}}
    if key.startswith("schemes.x."):  # a scheme of the kind that takes the field
        kind = {"rho": "lambda", "weights": "custom", "bootstrap_steps": "bmg",
                "bootstrap_target": "bmg", "matching_states": "bmg"}
        raw["schemes"]["x"] = {"kind": kind.get(key.rsplit(".", 1)[1], "last")}
    node = raw
    *sections, leaf = key.split(".")
    for section in sections:
        node = node.setdefault(section, {})
    node[leaf] = value
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert err.value.key == key
    with pytest.raises(WorkflowError):
        snakemake_validate(raw, str(SCHEMA), set_default=False)


def test_every_constraint_kind_is_exercised():
    keys = dict(constrained_keys())
    assert len(keys) >= 30 and {"env.num_rows", "agent.optimizer", "seeds", "meta.learn",
                                "claims.margin_fraction", "claims.tested", "sensitivity.gammas"} <= set(keys)


def test_every_shipped_setting_says_where_it_comes_from():
    """config.yaml and config/paper.yaml: each line that sets a value carries a comment."""
    for name in ("config.yaml", "config/paper.yaml"):
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            key, sep, value = code.partition(":")
            sets_a_value = sep and value.strip() and not value.strip().startswith("{kind")
            if sets_a_value:
                assert "#" in line, f"{name}:{number} sets {key.strip()!r} without saying why"
