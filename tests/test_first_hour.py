"""A user's first hour: which files predict.py loads, --resume keeping the interrupted run's settings,
output paths refused before any work, an empty Predict folder, a run that learned nothing, and
epochs counted from 1 everywhere. Fast, in-process runs on tiny generated datasets."""
import csv
import os
import shutil

import pytest

from classifier import config, runs, training
from classifier.config import EXIT_INTERRUPTED, EXIT_USAGE
from conftest import PROJECT, make_dataset, make_photo


def one_error_line(result, starts):
    assert result.returncode == EXIT_USAGE, (result.stdout, result.stderr)
    assert result.stderr.startswith(f"error: {starts}") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def rows(result):
    """The result lines predict.py printed (path TAB label TAB confidence)."""
    return [line.split("\t") for line in result.stdout.splitlines() if line.count("\t") == 2]


# 1. Which weights predict.py loads for --model RUN/model.h5 (a mismatched pair is in test_model_files.py).

def test_model_without_weights_beside_it_uses_its_own_never_the_projects(trained, tmp_path, run):
    output, _ = trained
    photo = make_photo(tmp_path / "photo.jpg", (40, 60, 160))
    with_pair = run("predict.py", photo, "--model", output / "model.h5")
    assert with_pair.returncode == 0, with_pair.stderr
    first = with_pair.stderr.splitlines()[0]
    assert first.startswith(f"Model: {output / 'model.h5'} (weights: {output / 'weights.h5'}); classes: Cats, Dogs")

    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(output / "model.h5", alone / "model.h5")
    result = run("predict.py", photo, "--model", alone / "model.h5")
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert first == f"Model: {alone / 'model.h5'} (weights: {alone / 'model.h5'}); classes: Cats, Dogs"
    assert str(PROJECT / "weights.h5") not in result.stderr + result.stdout
    # The same model's weights: the same label, about the same confidence (float16 in weights.h5).
    [(_, label, confidence)], [(_, pair_label, pair_confidence)] = rows(result), rows(with_pair)
    assert label == pair_label and abs(float(confidence) - float(pair_confidence)) < 0.01


# 2. --resume continues with the interrupted run's settings; a flag contradicting them is refused.

def test_resume_restores_the_interrupted_runs_settings(tmp_path, run, monkeypatch):
    data = make_dataset(tmp_path / "data", train_per_class=8, test_per_class=2)
    output = tmp_path / "out"
    original = training.EpochLog.on_epoch_end

    def stop_after_the_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt

    def leave(code):  # train_CNN.main leaves with os._exit on Ctrl-C: here, a SystemExit run() catches
        raise SystemExit(code)

    with monkeypatch.context() as patched:
        patched.setattr(training.EpochLog, "on_epoch_end", stop_after_the_first_epoch)
        patched.setattr(os, "_exit", leave)
        stopped = run("train_CNN.py", "--data", data, "--output", output, "--arch", "logistic", "--epochs", 3,
                      "--image-size", 24, "--batch-size", 4, "--seed", 7)
    assert stopped.returncode == EXIT_INTERRUPTED, stopped.stderr
    assert runs.has_finished_epochs(output)

    refused = run("train_CNN.py", "--resume", "--output", output, "--epochs", 9)
    one_error_line(refused, "--epochs 9 contradicts the interrupted run")
    assert "--epochs 3" in refused.stderr and "Epoch" not in refused.stdout

    resumed = run("train_CNN.py", "--resume", "--output", output)  # no other flag: all from the checkpoint
    assert resumed.returncode == 0, resumed.stderr
    model_line = next(line for line in resumed.stdout.splitlines() if line.startswith("Model '"))
    assert model_line.startswith("Model 'logistic': ") and "24x24 px" in model_line and "batch 4" in model_line
    assert model_line.endswith("3 epochs"), model_line
    epochs_run = [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs_run == ["2/3", "3/3"]
    assert (output / "model.h5").is_file() and not (output / "checkpoint").exists()


# 3. Output paths are checked before any photo is labelled (an unwritable --heatmaps parent is in
#    test_heatmaps.py, a --sheet that is not .png/.jpg in test_sheet.py, an --output under a file in
#    test_interrupt.py).

@pytest.mark.parametrize("flag, where", [
    ("--csv", "missing folder"),
    ("--csv", "existing folder"),
    ("--sheet", "missing folder"),
    ("--heatmaps", "existing file"),
])
def test_an_output_path_that_cannot_be_written_is_refused_before_labelling(trained, tmp_path, run, flag, where):
    output, _ = trained
    photo = make_photo(tmp_path / "photo.jpg", (40, 60, 160))
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("not a folder")
    target = {"missing folder": tmp_path / "nonexistent" / "dir" / ("labels.csv" if flag == "--csv" else "sheet.png"),
              "existing folder": tmp_path / "a-folder", "existing file": tmp_path / "a-file"}[where]
    result = run("predict.py", photo, "--model", output / "model.h5", flag, target)
    one_error_line(result, f"{flag} {target}")
    assert rows(result) == [] and result.stdout == ""
    assert "Model:" not in result.stderr  # refused before the model was even loaded
    assert (tmp_path / "a-file").read_text() == "not a folder"


# 4. predict.py with no paths on an empty Predict folder.

def test_an_empty_predict_folder_says_to_put_photos_there(tmp_path, run, monkeypatch):
    predict_dir = tmp_path / "Dataset" / "Predict"
    predict_dir.mkdir(parents=True)
    (predict_dir / "notes.txt").write_text("not a photo")
    monkeypatch.setattr(config, "PREDICT_DIR", predict_dir)
    result = run("predict.py", "--model", tmp_path / "no-model.h5")
    one_error_line(result, f"{predict_dir} holds no photos: put the photos to label there")
    assert "python predict.py PHOTOS" in result.stderr and result.stdout == ""


# 5 and 6. A run that learned nothing says so; "1 epoch"; epochs counted from 1 in training_log.csv.

def logged_epochs(output):
    with open(output / "reports" / "training_log.csv") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def test_a_run_at_chance_warns_and_says_1_epoch(tmp_path, run):
    grey = (100, 100, 100)
    data = make_dataset(tmp_path / "data", train_per_class=12, test_per_class=4, colours={"Cats": grey, "Dogs": grey})
    output = tmp_path / "out"
    result = run("train_CNN.py", "--data", data, "--output", output, "--arch", "logistic", "--epochs", 1,
                 "--image-size", 32, "--val-split", 0.5)
    assert result.returncode == 0, result.stderr
    model_line = next(line for line in result.stdout.splitlines() if line.startswith("Model 'logistic': "))
    assert model_line.endswith(", 1 epoch"), model_line
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: the validation accuracy never rose above chance")]
    assert len(warnings) == 1, result.stdout
    assert logged_epochs(output) == [1]


def test_training_log_counts_epochs_from_1_like_the_console(tmp_path, run):
    data = make_dataset(tmp_path / "data", train_per_class=6, test_per_class=2)
    output = tmp_path / "out"
    result = run("train_CNN.py", "--data", data, "--output", output, "--arch", "logistic", "--epochs", 2, "--image-size", 32)
    assert result.returncode == 0, result.stderr
    console = [int(line.split()[1].split("/")[0]) for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert console == [1, 2] and logged_epochs(output) == console
    model_line = next(line for line in result.stdout.splitlines() if line.startswith("Model 'logistic': "))
    assert model_line.endswith(", 2 epochs"), model_line


def test_a_missing_predict_folder_is_one_error_line(tmp_path, run, monkeypatch):
    predict_dir = tmp_path / "Dataset" / "Predict"  # not made
    monkeypatch.setattr(config, "PREDICT_DIR", predict_dir)
    result = run("predict.py", "--model", tmp_path / "no-model.h5")
    one_error_line(result, f"{predict_dir}")
