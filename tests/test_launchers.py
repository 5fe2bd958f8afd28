"""Launchers: a suite's runs as submitit jobs (its local processes stand in for SLURM) into one result store, failed
jobs named by run id, --resume decided before any job is submitted, and runs grouped into dependency waves."""

import contextlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.config import ConfigError, load_suite
from benchmark.launchers import SubmititLauncher, waves
from benchmark.schema import LauncherConfig

REPO = Path(__file__).resolve().parent.parent


def _suite(tmp_path, datasets, seeds=(0,), launcher=None) -> Path:
    method = {"extends": str(REPO / "configs/methods/single_net.yaml"), "model": {"nf": 8, "fc_units": 16}, "optimizer": {"name": "adam", "lr": 1e-3}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(method))
    suite = {
        "name": "jobs", "datasets": datasets, "methods": ["tiny.yaml"], "seeds": list(seeds),
        "data": {"image_size": 32, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False,
                    "num_sanity_val_steps": 0},
        "logging": {"wandb": False},
    }
    if launcher:
        suite["launcher"] = launcher
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _run(tmp_path, suite, *flags) -> int:
    return main(["run", str(suite), "--out", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "board.md"),
                 "--cache-dir", str(tmp_path / "cache"), *flags])


def _submitted(tmp_path) -> list[Path]:
    return sorted((tmp_path / "runs/submitit").glob("*_submitted.pkl"))


def test_submitit_local_jobs_share_one_store_and_resume_submits_nothing(tmp_path):
    suite = _suite(tmp_path, [{"name": "synthetic", "options": {"patients_per_class": 7}}], seeds=(0, 1),
                   launcher={"name": "submitit", "cluster": "local", "timeout_min": 10})
    assert _run(tmp_path, suite) == 0
    assert len(_submitted(tmp_path)) == 2  # one job per run
    results = sorted((tmp_path / "runs/results/synthetic/tiny").glob("*.json"))
    assert [p.name for p in results] == ["seed0.json", "seed1.json"]
    assert all(json.loads(p.read_text())["n_test_images"] > 0 for p in results)
    assert "| tiny | 0,1 |" in (tmp_path / "board.md").read_text()  # written once, from both jobs' results

    assert _run(tmp_path, suite, "--resume") == 0  # --resume is decided before submitting: both results are kept
    assert len(_submitted(tmp_path)) == 2


def test_a_failed_job_is_named_with_its_stderr_and_the_command_fails(tmp_path, capsys):
    suite = _suite(tmp_path, [{"name": "covid19_radiography", "root": str(tmp_path / "no-such-folder")}])  # fails in its job
    assert _run(tmp_path, suite, "--launcher", "submitit", "--cluster", "local", "--timeout-min", "10") == 1
    err = capsys.readouterr().err
    assert "1 of 1 run(s) failed" in err
    line = next(line for line in err.splitlines() if "run covid19_radiography/tiny/seed0 failed:" in line)
    assert "DatasetNotFoundError" in line and "does not exist" in line  # the job's exception, in one line
    stderr = Path(line.split("(stderr: ")[1].rstrip(")"))
    assert stderr.name.endswith("_log.err") and "Traceback" in stderr.read_text()
    assert not (tmp_path / "board.md").exists()  # no result at all: no leaderboard


def test_launcher_section_and_flags_are_validated(tmp_path, capsys):
    suite = _suite(tmp_path, ["synthetic"], launcher={"name": "submitit", "clustr": "local"})
    assert _run(tmp_path, suite) == 2
    assert "did you mean `cluster`" in capsys.readouterr().err
    suite = _suite(tmp_path, ["synthetic"])
    assert _run(tmp_path, suite, "--launcher", "submitit", "--max-parallel-jobs", "0") == 2
    assert "launcher.max_parallel_jobs" in capsys.readouterr().err
    assert _run(tmp_path, suite, "--launcher", "submitit", "--cluster", "local", "--devices", "2") == 2  # one process per local job
    assert "a local submitit job is one process" in capsys.readouterr().err


def test_run_specs_pickle(tmp_path):
    spec = load_suite(_suite(tmp_path, ["synthetic"])).runs[0]
    assert pickle.loads(pickle.dumps(spec)) == spec


@dataclass
class Fake:
    run_id: str
    prerequisites: list = field(default_factory=list)
    trainer: dict = field(default_factory=dict)


def test_waves_put_prerequisites_first():
    pre, a, b, c = Fake("pre"), Fake("a", ["pre"]), Fake("b"), Fake("c", ["a", "b"])
    assert [[s.run_id for s in w] for w in waves([c, a, pre, b])] == [["pre", "b"], ["a"], ["c"]]
    assert [[s.run_id for s in w] for w in waves([a, c, b], done={"pre"})] == [["a", "b"], ["c"]]  # pre: kept by --resume
    with pytest.raises(ConfigError, match="needs pre, which is not a run"):
        waves([a])
    with pytest.raises(ConfigError, match="cycle"):
        waves([Fake("x", ["y"]), Fake("y", ["x"])])


class FakeJob:
    def __init__(self, spec):
        self.job_id, self.spec = spec.run_id, spec
        self.paths = type("Paths", (), {"stderr": f"{spec.run_id}.err"})

    def exception(self):
        return RuntimeError(f"trace\nValueError: {self.spec.run_id} broke") if self.spec.run_id == "pre" else None

    def results(self):
        return [{"accuracy": 1.0}]


class FakeExecutor:
    def __init__(self):
        self.waves = []

    def update_parameters(self, **kwargs):
        pass

    @contextlib.contextmanager
    def batch(self):
        self.waves.append([])
        yield

    def submit(self, fn, spec, options):
        self.waves[-1].append(spec.run_id)
        return FakeJob(spec)


def test_submitit_waits_for_each_wave_and_skips_the_dependents_of_a_failed_run(tmp_path, monkeypatch):
    executor = FakeExecutor()
    monkeypatch.setattr(SubmititLauncher, "executor", lambda self: executor)
    config = {"folder": None, "cluster": "local", "max_parallel_jobs": 2, "gpus_per_node": 0}
    specs = [Fake("pre"), Fake("a", ["pre"]), Fake("b"), Fake("c"), Fake("d", ["b"])]
    failures = SubmititLauncher(config, out_dir=tmp_path).launch(specs, options={})
    assert executor.waves == [["pre", "b"], ["c"], ["d"]]  # wave 1 in chunks of 2; `a` never submitted
    assert [(f.run_id, f.error, f.stderr) for f in failures] == [("pre", "ValueError: pre broke", "pre.err"),
                                                                ("a", "not run: its prerequisite pre failed", None)]


def test_a_slurm_job_asks_for_what_lightning_checks(tmp_path, monkeypatch):
    (tmp_path / "srun").write_text("#!/bin/sh\n")  # submitit's SLURM executor only looks for srun; nothing is submitted
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    config = LauncherConfig(name="submitit", cluster="slurm", slurm_partition="gpu", gpus_per_node=4, cpus_per_task=8,
                            max_parallel_jobs=3, slurm_additional_parameters={"account": "abc"}).model_dump()
    launcher = SubmititLauncher(config, out_dir=tmp_path / "runs")
    shape = launcher.job_shape(Fake("ddp", trainer={"devices": 4, "num_nodes": 2, "strategy": "ddp"}))
    assert shape == (2, 4) and launcher.job_shape(Fake("auto", trainer={"devices": "auto"})) == (1, 4)
    executor = launcher.executor()
    executor.update_parameters(nodes=shape[0], tasks_per_node=shape[1])
    script = executor._executor._make_submission_file_text("python -m x", "uid")  # the sbatch file submitit would send
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--cpus-per-task=8", "--partition=gpu", "--account=abc", "--time=240"):
        assert f"#SBATCH {line}\n" in script
    assert executor._executor.parameters["array_parallelism"] == 3
