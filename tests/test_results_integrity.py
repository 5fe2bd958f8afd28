"""Results are never lost or mixed: a missing store is an error, a leaderboard is only replaced from its own store,
--resume re-runs what changed, configurations are never pooled, unreadable results are skipped by name, and
concurrent writers never leave torn JSON or temporary files."""

import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.leaderboard import render
from benchmark.results import read_results, write_result

REPO = Path(__file__).resolve().parent.parent


def _result(method="m", seed=0, accuracy=0.5, fingerprint=None, config=None) -> dict:
    """A fabricated result with every key the leaderboard reads."""
    result = {
        "method": {"id": method, "method": "single_net"}, "seed": seed, "parameter_count": 1e6, "start_weights": "random init",
        "metrics": {"accuracy": accuracy, "auroc": 0.7, "sensitivity/a": 0.5, "sensitivity/b": 0.5},
        "dataset": {"name": "synthetic", "image_size": 32, "split_sha256": "ab" * 32, "classes": ["a", "b"], "split_file": "s.csv",
                    "split_seed": 0, "counts": {"test": {"images": 10, "patients": 5}}},
    }
    if fingerprint:
        result.update(config_fingerprint=fingerprint, config=config or {})
    return result


def _store(out: Path, *results: dict) -> Path:
    for r in results:
        write_result(out / "results" / r["dataset"]["name"] / r["method"]["id"] / f"seed{r['seed']}.json", r)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_leaderboard_of_a_missing_results_folder_is_an_error_and_touches_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _store(Path("runs"), _result())
    assert main(["leaderboard", "--out", "runs"]) == 0
    before = _files(tmp_path)
    for args in (["--out", "rusn"], ["--out", "rusn", "--leaderboard", "leaderboard.md"], ["--out", "rusn", "--replace-leaderboard"]):
        capsys.readouterr()
        assert main(["leaderboard", *args]) == 2
        assert "error: results folder rusn/results does not exist" in capsys.readouterr().err
    assert _files(tmp_path) == before  # byte for byte, and nothing left behind


def test_a_leaderboard_is_only_replaced_from_its_own_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _store(Path("runs"), _result("ours"))
    _store(Path("other"), _result("theirs"))
    Path("leaderboard.md").write_text("# CXR-Bench leaderboard\n\nGenerated from 12 result file(s) in `runs/results` by `...`.\n")  # a pre-marker page
    assert main(["leaderboard"]) == 0  # same store (recognised from the sentence): rewritten
    board = Path("leaderboard.md").read_text()
    assert "<!-- cxr-bench results store: runs/results -->" in board and "| ours |" in board

    capsys.readouterr()
    assert main(["leaderboard", "--out", "other"]) == 0  # default target of another store: goes to other/leaderboard.md
    out = capsys.readouterr().out
    assert "leaderboard written: other/leaderboard.md" in out and "generated from results store" in out
    assert Path("leaderboard.md").read_text() == board and "| theirs |" in Path("other/leaderboard.md").read_text()
    assert "<!-- cxr-bench results store: results -->" in Path("other/leaderboard.md").read_text()

    assert main(["leaderboard", "--out", "other", "--leaderboard", "leaderboard.md"]) == 2  # explicit target: an error
    err = capsys.readouterr().err
    assert err.startswith("error: leaderboard.md was generated from results store") and "runs/results" in err and "--replace-leaderboard" in err
    assert Path("leaderboard.md").read_text() == board

    Path("notes.md").write_text("my notes\n")  # a page no leaderboard wrote
    assert main(["leaderboard", "--leaderboard", "notes.md"]) == 2
    assert "notes.md records no results store" in capsys.readouterr().err and Path("notes.md").read_text() == "my notes\n"

    assert main(["leaderboard", "--out", "other", "--leaderboard", "leaderboard.md", "--replace-leaderboard"]) == 0  # asked explicitly
    assert "| theirs |" in Path("leaderboard.md").read_text()
    assert not [p for p in tmp_path.rglob("*.tmp")]


def _suite(tmp_path: Path) -> Path:
    method = {"extends": str(REPO / "configs/methods/single_net.yaml"), "model": {"nf": 4, "fc_units": 8}, "grid_search": None}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(method))
    suite = {
        "name": "tiny", "datasets": [{"name": "synthetic", "options": {"patients_per_class": 6}}], "methods": ["tiny.yaml"], "seeds": [0],
        "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False}, "logging": {"wandb": False},
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    return tmp_path / "suite.yaml"


def test_resume_reruns_only_what_changed_and_run_keeps_other_stores_leaderboards(tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.chdir(tmp_path)
    run = ["run", str(_suite(tmp_path)), "--cache-dir", "cache"]
    result_file = Path("runs/results/synthetic/tiny/seed0.json")
    assert main(run) == 0
    first = json.loads(result_file.read_text())
    assert first["config"]["trainer"]["max_epochs"] == 1 and len(first["config_fingerprint"]) == 16
    assert "seed" not in first["config"] and "title" not in first["config"]["method"]

    with caplog.at_level("INFO"):
        assert main([*run, "--resume"]) == 0  # same configuration: skipped
    assert "skipped (--resume)" in caplog.text and json.loads(result_file.read_text())["written_at"] == first["written_at"]

    caplog.clear()
    with caplog.at_level("INFO"):
        assert main([*run, "--resume", "--max-epochs", "2"]) == 0  # another setting: the seed runs again, and says why
    assert "running again (--resume): configuration changed: trainer.max_epochs 1 -> 2" in caplog.text
    second = json.loads(result_file.read_text())
    assert second["config"]["trainer"]["max_epochs"] == 2 and second["config_fingerprint"] != first["config_fingerprint"]

    # a run into another store never replaces ./leaderboard.md: the default target gives way, an explicit one fails fast
    board = Path("leaderboard.md").read_text()
    shutil.copytree("runs/results", "new/results")
    capsys.readouterr()
    assert main([*run, "--resume", "--max-epochs", "2", "--out", "new"]) == 0
    assert "leaderboard written: new/leaderboard.md" in capsys.readouterr().out and Path("leaderboard.md").read_text() == board
    assert main([*run, "--out", "fresh", "--leaderboard", "leaderboard.md"]) == 2
    assert "error: leaderboard.md was generated from results store" in capsys.readouterr().err
    assert not Path("fresh").exists() and Path("leaderboard.md").read_text() == board  # nothing trained, nothing written


def test_two_configurations_of_one_method_are_two_rows(tmp_path):
    runs = [_result(seed=0, accuracy=0.4, fingerprint="1a2b3c4d" * 2, config={"trainer": {"max_epochs": 4}}),
            _result(seed=1, accuracy=0.6, fingerprint="1a2b3c4d" * 2, config={"trainer": {"max_epochs": 4}}),
            _result(seed=2, accuracy=0.9, fingerprint="9f8e7d6c" * 2, config={"trainer": {"max_epochs": 2}}),
            _result(seed=3, accuracy=0.1), _result("solo", fingerprint="55" * 8)]
    board = render(runs, source="runs/results")
    assert "| m [cfg 1a2b3c4d] | 0,1 | 0.500 ± 0.141 (n=2) |" in board  # no predictions files here: no CI
    assert "| m [cfg 9f8e7d6c] | 2 | 0.900 |" in board
    assert "| m [cfg unrecorded] | 3 | 0.100 |" in board  # results older than fingerprints form their own row
    assert "| solo | 0 |" in board and "| m | " not in board
    assert "differ in configuration (trainer.max_epochs)" in board


def test_an_unreadable_result_is_named_and_skipped(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    _store(Path("runs"), _result("good"))
    bad = Path("runs/results/synthetic")
    (bad / "torn.json").write_text('{"schema_version": 1, "met')
    (bad / "old.json").write_text(json.dumps({**_result("old"), "schema_version": 0}))
    (bad / "partial.json").write_text(json.dumps({"schema_version": 1, "method": {"id": "x"}}))
    (bad / "binary.json").write_bytes(b"\xff\xfe\x00")
    with caplog.at_level("WARNING"):
        assert main(["leaderboard"]) == 0
    board = Path("leaderboard.md").read_text()
    assert "| good |" in board and "Generated from 1 result file(s)" in board
    for name, reason in [("torn", "not valid JSON"), ("old", "result schema 0"), ("partial", "missing key 'dataset.name'"), ("binary", "unreadable")]:
        assert f"`runs/results/synthetic/{name}.json` ({reason}" in board
        assert f"skipped result file runs/results/synthetic/{name}.json" in caplog.text
    assert [r["method"]["id"] for r in read_results(Path("runs/results"))[0]] == ["good"]


def test_concurrent_writers_never_tear_a_result_or_leave_temporary_files(tmp_path):
    path = tmp_path / "results/synthetic/m/seed0.json"
    write_result(path, {"writer": -1, "payload": []})
    errors, done = [], threading.Event()

    def writer(number: int) -> None:
        try:
            for i in range(40):
                write_result(path, {"writer": number, "payload": list(range(number * 200 + i))})
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def reader() -> None:
        while not done.is_set():
            try:
                data = json.loads(path.read_text())
                assert data["payload"] == list(range(len(data["payload"])))  # a whole payload of one write
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()
    assert not errors, errors[:3]
    assert [p.name for p in path.parent.iterdir()] == ["seed0.json"]  # no temporary file left behind
    assert json.loads(path.read_text())["writer"] in range(8)



def test_resume_reasons_for_old_unreadable_and_grid_searched_results(tmp_path):
    from benchmark.cli import _resume_reason
    from benchmark.config import RunSpec
    from benchmark.config import apply
    from benchmark.results import config_fingerprint, effective_config, result_path

    grid = {"optimizer.lr": [1e-2, 1e-3]}
    spec = RunSpec("s", {"name": "synthetic"}, {"id": "m", "method": "single_net", "optimizer": {"lr": 1e-3}}, 0, {"batch_size": 8}, {"max_epochs": 1}, grid_search=grid)
    path = result_path(tmp_path, spec.run_id)
    assert _resume_reason(spec, tmp_path) == "no result yet"
    # a grid-searched result is fingerprinted by the suite's spec (the search's choice follows from it)
    write_result(path, _result(fingerprint=config_fingerprint(spec), config=effective_config(spec)))
    assert _resume_reason(spec, tmp_path) is None
    plain = apply(spec, {})  # the same method without its search
    assert _resume_reason(plain, tmp_path).startswith("configuration changed: grid_search")
    changed = apply(spec, {"optimizer.lr": 1e-2})
    write_result(path, _result(fingerprint=config_fingerprint(changed), config=effective_config(changed)))
    assert _resume_reason(plain, tmp_path) == "configuration changed: method.optimizer.lr 0.01 -> 0.001"

    write_result(path, _result())
    assert _resume_reason(plain, tmp_path) == "result has no fingerprint (written by an older version)"
    path.write_text('{"schema_version": 1, "met')
    assert _resume_reason(plain, tmp_path) == "result file is unreadable"
