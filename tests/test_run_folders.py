"""Runs without --output, as the README's quick start makes them: the first goes to runs/ARCH, the next
to runs/ARCH-2, and `train_CNN.py --resume` alone continues the latest interrupted one. runs/ is
this test's folder (runs.RUNS_DIR), never the project's."""
import collections
import csv

import pytest

from conftest import make_dataset

Usage = collections.namedtuple("Usage", "total used free")
PLENTY, LITTLE = Usage(2**40, 0, 10 * 2**30), Usage(2**40, 0, 5 * 2**20)
ARGS = ("--arch", "logistic", "--epochs", 2, "--image-size", 32, "--batch-size", 8)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    import classifier.runs
    monkeypatch.setattr(classifier.runs, "RUNS_DIR", tmp_path / "runs")
    return tmp_path / "runs"


def saved_in(result):
    """The model.h5 the run says it saved."""
    line = next(line for line in result.stdout.splitlines() if line.startswith("Label photos with it: "))
    return line.rsplit("--model ", 1)[1]


def test_runs_without_output_get_new_folders_and_resume_alone_finds_the_interrupted_one(tmp_path, runs, run, monkeypatch):
    from classifier import training
    from classifier.runs import has_finished_epochs

    data = make_dataset(tmp_path / "data", train_per_class=6, test_per_class=2)
    first = run("train_CNN.py", "--data", data, *ARGS)
    assert first.returncode == 0, first.stderr
    assert saved_in(first) == str(runs / "logistic" / "model.h5")
    kept = (runs / "logistic" / "model.h5").read_bytes()

    # The next two stop after their first epoch (the disk fills up before the checkpoint of the second):
    # interrupted runs in runs/logistic-2 and runs/logistic-3, which only --resume continues.
    for number in (2, 3):
        room = iter([PLENTY, PLENTY])  # prepare_output, then the end of epoch 1; then the disk is full
        monkeypatch.setattr(training.shutil, "disk_usage", lambda path: next(room, LITTLE))
        stopped = run("train_CNN.py", "--data", data, *ARGS)
        assert stopped.returncode == 2 and f"only 5 MB left in {runs / f'logistic-{number}'}," in stopped.stderr, stopped.stderr
        assert has_finished_epochs(runs / f"logistic-{number}") and not (runs / f"logistic-{number}" / "model.h5").exists()
    monkeypatch.setattr(training.shutil, "disk_usage", lambda path: PLENTY)

    for number in (3, 2):  # no --output, no --data: the latest interrupted run, with its settings, then the other
        resumed = run("train_CNN.py", "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert saved_in(resumed) == str(runs / f"logistic-{number}" / "model.h5")
        assert [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("Epoch ")] == ["2/2"]
        with open(runs / f"logistic-{number}" / "reports" / "training_log.csv") as file:
            assert [row["epoch"] for row in csv.DictReader(file)] == ["1", "2"]
    assert (runs / "logistic" / "model.h5").read_bytes() == kept  # the first run's model, untouched
    assert sorted(path.name for path in runs.iterdir()) == ["logistic", "logistic-2", "logistic-3"]
    nothing = run("train_CNN.py", "--resume")
    assert nothing.returncode == 2 and nothing.stderr == f"error: no interrupted run found in {runs}: pass --output DIR of the run to resume\n"
