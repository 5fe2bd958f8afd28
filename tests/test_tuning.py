"""Fair sweeps (benchmark/tuning.py): search spaces in the schema, reproducible draws, draw 0 = the paper defaults,
and a suite's `tuning:` expanded into draws x trials for every method."""

from pathlib import Path

import pytest
import yaml

from benchmark.config import ConfigError, load_method, load_suite
from benchmark.results import config_fingerprint
from benchmark.tuning import draw_values

REPO = Path(__file__).resolve().parent.parent
SPACE = {"optimizer.lr": {"log_uniform": [1e-5, 1e-3]}, "data.batch_size": {"choice": [8, 16, 32]},
         "loss.beta": {"uniform": [0.5, 1.0]}, "model.nf": {"int_uniform": [4, 8]}}


def test_draws_are_reproducible_within_their_priors_and_draw_zero_is_the_defaults():
    assert draw_values(SPACE, seed=0, draw=0) == {}
    draws = [draw_values(SPACE, seed=0, draw=d) for d in range(1, 6)]
    assert draws == [draw_values(SPACE, seed=0, draw=d) for d in range(1, 6)]  # same seed, same draws
    assert draws != [draw_values(SPACE, seed=1, draw=d) for d in range(1, 6)]
    for values in draws:
        assert 1e-5 <= values["optimizer.lr"] <= 1e-3 and values["data.batch_size"] in (8, 16, 32)
        assert 0.5 <= values["loss.beta"] <= 1.0 and values["model.nf"] in range(4, 9)
    assert len({v["optimizer.lr"] for v in draws}) == 5
    # a key's value depends only on (seed, draw, key): a smaller space draws the same values for the keys it keeps
    assert draw_values({"optimizer.lr": SPACE["optimizer.lr"]}, seed=0, draw=3)["optimizer.lr"] == draws[2]["optimizer.lr"]


def _method(tmp_path, name="tiny.yaml", **extra):
    method = {"extends": str(REPO / "configs/methods/single_net.yaml"), "model": {"nf": 8, "fc_units": 16},
              "optimizer": {"name": "adam", "lr": 1e-3}, "data": {"batch_size": 8}, "trainer": {"max_epochs": 1}, "grid_search": None, **extra}
    (tmp_path / name).write_text(yaml.safe_dump(method))
    return name


def _suite(tmp_path, methods, **extra):
    suite = {"name": "sweep", "datasets": ["synthetic"], "methods": methods, "logging": {"wandb": False},
             "data": {"image_size": 32, "split_seed": 0}, **extra}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_a_sweep_gives_every_method_the_same_draws_and_trials(tmp_path):
    spaced = _method(tmp_path, "a.yaml")
    plain = _method(tmp_path, "b.yaml", search_space=None)  # none (null drops the inherited one): the paper defaults only
    suite = load_suite(_suite(tmp_path, [spaced, plain], tuning={"draws": 3, "trials": 2, "seed": 7}))
    ids = [spec.run_id for spec in suite.runs]
    assert len(ids) == len(set(ids)) == 3 * 2 + 1 * 2
    assert "synthetic/a/draw2/seed1" in ids and "synthetic/b/draw0/seed0" in ids
    drawn = {spec.run_id: spec for spec in suite.runs}
    defaults, second = drawn["synthetic/a/draw0/seed0"], drawn["synthetic/a/draw2/seed0"]
    assert defaults.draw["values"] == {} and defaults.method["optimizer"]["lr"] == 1e-3 and defaults.data["batch_size"] == 8
    values = draw_values(load_method(tmp_path / spaced)["search_space"], seed=7, draw=2)
    assert second.draw["values"] == values and second.method["optimizer"]["lr"] == values["optimizer.lr"]
    assert second.data["batch_size"] == values["data.batch_size"] and second.draw["space"]["optimizer.lr"] == {"log_uniform": [1e-5, 1e-3]}
    assert second.draw["select"] == "validation" and (second.draw["draws"], second.draw["trials"], second.draw["seed"]) == (3, 2, 7)
    assert config_fingerprint(defaults) != config_fingerprint(second)
    # draw 0 is the method as configured: the same fingerprint as the run without a sweep
    untuned = load_suite(_suite(tmp_path, [spaced])).runs[0]
    assert config_fingerprint(untuned) == config_fingerprint(defaults) and untuned.run_id == "synthetic/a/seed0"


@pytest.mark.parametrize("space, message", [
    ({"optimizer.lr": {"log_uniform": [1e-3, 1e-5]}}, "low must be below high"),
    ({"optimizer.lr": {"log_uniform": [1e-5, 1e-3], "uniform": [0, 1]}}, "exactly one of"),
    ({"optimizer.lr": {"normal": [0, 1]}}, "unknown key `normal`"),
    ({"optimizer.lrr": {"uniform": [0.1, 0.2]}}, "not a setting of method"),
    ({"data.image_size": {"choice": [32, 64]}}, "shared split or images"),
    ({"lr": {"uniform": [0.1, 0.2]}}, "<section>.<key>"),
])
def test_a_bad_search_space_fails_at_load_naming_the_key(tmp_path, space, message):
    with pytest.raises(ConfigError, match=message):
        load_suite(_suite(tmp_path, [_method(tmp_path, search_space=space)], tuning={"draws": 2}))


def test_a_draw_that_makes_an_invalid_configuration_fails_at_load(tmp_path):
    method = _method(tmp_path, search_space={"data.batch_size": {"choice": [0, 8]}})
    with pytest.raises(ConfigError, match="batch_size"):
        load_suite(_suite(tmp_path, [method], tuning={"draws": 8}))


def test_trials_set_the_seeds_and_oracle_is_no_suite_rule(tmp_path):
    method = _method(tmp_path)
    with pytest.raises(ConfigError, match="trials"):
        load_suite(_suite(tmp_path, [method], tuning={"draws": 2}, seeds=[0, 1]))
    with pytest.raises(ConfigError, match="select"):
        load_suite(_suite(tmp_path, [method], tuning={"select": "oracle"}))
    with pytest.raises(ConfigError, match="leave-one-source-out-validation"):
        load_suite(_suite(tmp_path, [method], tuning={"select": "leave-one-source-out-validation"}))
    runs = load_suite(_suite(tmp_path, [method], tuning={"draws": 1, "trials": 3}), seeds=[5]).runs
    assert [spec.seed for spec in runs] == [5]  # --seeds still overrides


def test_every_shipped_search_space_loads_and_draws_valid_configurations():
    spaced = [path for path in sorted((REPO / "configs/methods").glob("*.yaml")) if load_method(path)["search_space"]]
    assert {"single_net", "siamese", "wce_resnet50", "wce_acnn", "wce_resnet50_beta075_quick"} <= {p.stem for p in spaced}
    from benchmark.config import _draws

    for path in spaced:
        method = load_method(path)
        drawn = _draws(method, {"draws": 4, "trials": 1, "seed": 0, "select": "validation"}, {}, path)
        assert len(drawn) == 4 and drawn[0][0]["optimizer"] == method["optimizer"]


def test_test_each_holds_out_every_source_and_the_rule_sets_the_validation(tmp_path):
    phantoms = [{"name": "synthetic", "options": {"patients_per_class": 6, "sources": 3}}]
    method = _method(tmp_path)
    runs = load_suite(_suite(tmp_path, [method], datasets=phantoms, split={"by": "source", "test": "each"}, tuning={"draws": 2}),
                      cache_dir=tmp_path / "cache").runs
    assert [spec.run_id for spec in runs][::2] == [f"synthetic/heldout-site{k}/tiny/draw0/seed0" for k in range(3)]
    assert {spec.data["held_out"]["validation"] for spec in runs} == {"random"}
    runs = load_suite(_suite(tmp_path, [method], datasets=phantoms, split={"by": "source", "test": ["site1", "site2"]},
                             tuning={"select": "leave-one-source-out-validation"}), cache_dir=tmp_path / "cache").runs
    assert len(runs) == 1 and runs[0].data["held_out"] == {"field": "auto", "test": ["site1", "site2"], "validation": "source", "val_source": None}
    assert runs[0].run_id == "synthetic/heldout-site1+site2/tiny/draw0/seed0"
    # the split is the suite's: a method's held_out is ignored as its split_seed would be
    assert load_suite(_suite(tmp_path, [_method(tmp_path, data={"held_out": {"test": ["site0"]}})], datasets=phantoms)).runs[0].data["held_out"] is None


def test_a_chain_draws_its_last_stage_phases_and_keeps_its_shared_stage(tmp_path):
    suite = _suite(tmp_path, [str(REPO / "configs/methods/transfer_covid_cxr14_quick.yaml"), str(REPO / "configs/methods/twice_transfer_b_quick.yaml")],
                   datasets=["covid19_radiography"], synthetic_without_data_root=True, tuning={"draws": 2})
    runs = {spec.run_id: spec for spec in load_suite(suite).runs}
    first, second = (runs[f"synthetic/transfer_covid_cxr14_quick/draw{d}/seed0"] for d in (0, 1))
    values = second.draw["values"]
    assert second.stages[-1]["phases"][0]["optimizer"]["lr"] == values["stages.covid.phases.train.optimizer.lr"] != first.stages[-1]["phases"][0]["optimizer"]["lr"]
    assert second.stages[-1]["data"]["batch_size"] == values["data.batch_size"]
    assert first.stages[0] == second.stages[0]  # the ChestX-ray14 stage (nulled keys) trains once for every draw
    twice = runs["synthetic/twice_transfer_b_quick/draw1/seed0"]
    head, whole = twice.stages[-1]["phases"][:2]
    assert (head["optimizer"]["lr"], whole["optimizer"]["lr"]) == (twice.draw["values"]["stages.covid.phases.head.optimizer.lr"],
                                                                   twice.draw["values"]["stages.covid.phases.all.optimizer.lr"])
    assert twice.stages[-1]["phases"][2]["optimizer"]["lr"] == 1e-5  # a phase outside the space keeps its paper value


def test_a_chain_key_names_the_phases_it_could_mean(tmp_path):
    method = {"extends": str(REPO / "configs/methods/cae_lstm_quick.yaml"), "search_space": {"stages.classify.phases.head.optimizer.lr": {"log_uniform": [1e-4, 1e-2]}}}
    (tmp_path / "cae.yaml").write_text(yaml.safe_dump(method))
    with pytest.raises(ConfigError, match=r"stages.classify.phases.head.optimizer \(unset: the method's optimizer"):
        load_suite(_suite(tmp_path, ["cae.yaml"], datasets=["covid19_radiography"], synthetic_without_data_root=True, tuning={"draws": 2}))


def test_a_suites_class_map_reaches_only_the_stages_on_its_own_dataset(tmp_path):
    suite = _suite(tmp_path, [str(REPO / "configs/methods/twice_transfer_b_quick.yaml")], datasets=["covid19_radiography"],
                   synthetic_without_data_root=True, data={"image_size": 32, "split_seed": 0, "class_map": {"COVID-19": "COVID-19", "*": "non-COVID"}})
    stages = load_suite(suite).runs[0].stages
    assert stages[0]["data"]["class_map"] is None  # the ChestX-ray14 stage keeps its own (multi-label) labels
    assert stages[-1]["data"]["class_map"] == {"COVID-19": "COVID-19", "*": "non-COVID"}
