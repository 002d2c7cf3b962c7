"""Config loading: every invalid value is one clear error naming its key."""

import pytest
import yaml

from conftest import tiny_config
from mgrl.config import ConfigError, SchemeConfig, load_config
from mgrl.estimators import scheme_weights
from mgrl.runs import scheme_of


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"horizons": [1, 0]}, "horizons"),
        ({"horizons": []}, "horizons"),
        ({"seeds": []}, "seeds"),
        ({"schemes": {"mix": {"kind": "custom", "weights": [0.5, 0.4]}}}, "schemes.mix.weights"),
        ({"schemes": {"mix": {"kind": "custom", "weights": [1.5, -0.5]}}}, "schemes.mix.weights"),
        ({"schemes": {"td": {"kind": "lambda", "rho": 1.5}}}, "schemes.td.rho"),
        ({"schemes": {"td": {"kind": "lambda", "rho": -0.1}}}, "schemes.td.rho"),
        ({"schemes": {"td": {"kind": "lambda"}}}, "schemes.td.rho"),
        ({"schemes": {"x": {"kind": "median"}}}, "schemes.x.kind"),
        ({"schemes": {"a2c": {"kind": "last"}}}, "schemes.a2c"),
        ({"env": {"num_rows": 3}}, "env.num_rows"),
        ({"env": {"num_cols": 2}}, "env.num_cols"),
        ({"env": {"board": 6}}, "env.board"),
        ({"agent": {"learning_rat": 0.1}}, "agent.learning_rat"),
        ({"agent": {"optimizer": "lbfgs"}}, "agent.optimizer"),
        ({"agent": {"gamma_init": 1.0}}, "agent.gamma_init"),
        ({"meta": {"learn": ["alpha"]}}, "meta.learn"),
        ({"train": {"num_intervals": "ten"}}, "train.num_intervals"),
        ({"train": {"dtype": "float16"}}, "train.dtype"),
        ({"probe": {"reference_horizon": 2}}, "probe.reference_horizon"),
        ({"horizon": [1]}, "horizon"),
        ({"replication": {"seed_offset": 0}}, "replication.seed_offset"),
        ({"seeds": [0, 1, 4], "replication": {"seed_offset": 3}}, "replication.seed_offset"),
    ],
)
def test_invalid_values_name_their_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        tiny_config(**overrides)
    assert err.value.key == key
    assert f"'{key}'" in str(err.value)


def test_load_config_from_yaml_and_unknown_top_level_key(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"seeds": [1, 2], "horizons": [1, 4],
                                    "schemes": {"uniform": {"kind": "uniform"}},
                                    "probe": {"reference_horizon": 4}}))
    cfg = load_config(good)
    assert cfg.seeds == (1, 2) and cfg.horizons == (1, 4)
    assert scheme_of(cfg, "uniform").kind == "uniform"
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [0]\nhorizonz: [1]\n")
    with pytest.raises(ConfigError, match="'horizonz'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_scheme_weights():
    assert scheme_weights(SchemeConfig("last"), 3) == (0.0, 0.0, 1.0)
    assert scheme_weights(SchemeConfig("uniform"), 4) == (0.25,) * 4
    w = scheme_weights(SchemeConfig("lambda", rho=0.5), 4)
    assert w == pytest.approx((0.5, 0.25, 0.125, 0.125))
    assert sum(w) == pytest.approx(1.0)
    assert scheme_weights(SchemeConfig("lambda", rho=1.0), 3) == pytest.approx((0, 0, 1))
    assert scheme_weights(SchemeConfig("lambda", rho=0.0), 3) == pytest.approx((1, 0, 0))
    for kind in ("last", "uniform"):
        assert scheme_weights(SchemeConfig(kind), 1) == (1.0,)
    with pytest.raises(ConfigError, match="horizons"):
        scheme_weights(SchemeConfig("last"), 0)


def test_replicate_seeds_are_disjoint_and_jobs_configs_are_not_checked():
    from mgrl.config import ReplicationConfig, replicate_seeds

    cfg = tiny_config(seeds=[0, 1, 1001], replication={"seed_offset": 5})
    assert replicate_seeds(cfg.seeds, ReplicationConfig(5)) == (5, 6, 1006)
    with pytest.raises(ConfigError, match=r"share \[1001\]"):  # 1 + 1000 with the default offset
        tiny_config(seeds=[0, 1, 1001], replication={})
    # A job's config carries no analysis section: one seed set's seeds, whatever the offset was.
    assert tiny_config(seeds=[0, 1, 1001]).seeds == (0, 1, 1001)


def test_config_hash_changes_with_content():
    assert tiny_config().hash() == tiny_config().hash()
    assert tiny_config().hash() != tiny_config(agent={"learning_rate": 0.1}).hash()


def test_shipped_config_is_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "config.yaml")
    assert len(cfg.seeds) >= 1 and len(cfg.horizons) >= 1


def test_rmsprop_settings_reach_the_inner_optimiser():
    """agent.rmsprop_decay and rmsprop_eps (the authors': 0.9, 1e-8 inside the square root) are
    what optax's rmsprop gets; the defaults keep 0.99 and 1e-5."""
    import jax.numpy as jnp
    import optax

    from mgrl.agent import make_inner_optimizer
    from mgrl.config import AgentConfig

    params, grads = {"w": jnp.zeros(3)}, {"w": jnp.asarray([1e-3, -2.0, 0.5])}
    for kwargs, (decay, eps) in (({}, (0.99, 1e-5)),
                                 ({"rmsprop_decay": 0.9, "rmsprop_eps": 1e-8}, (0.9, 1e-8))):
        ours = make_inner_optimizer(AgentConfig(optimizer="rmsprop", learning_rate=5e-4, **kwargs))
        theirs = optax.rmsprop(5e-4, decay=decay, eps=eps, eps_in_sqrt=True)
        got, _ = ours.update(grads, ours.init(params), params)
        want, _ = theirs.update(grads, theirs.init(params), params)
        assert jnp.array_equal(got["w"], want["w"])
