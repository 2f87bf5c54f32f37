"""Faults during training: Ctrl-C and kill mid-epoch, a full disk, an unwritable --output, a crash
while saving. No trained model is ever lost, and an interrupted run resumes where it stopped."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from types import SimpleNamespace

import h5py
import pytest

from classifier import artifacts, runs
from classifier.config import EXIT_INTERRUPTED, EXIT_USAGE, RunConfig, UsageError, short_path
from conftest import PROJECT, ctrl_c_as_in_a_terminal, make_dataset

EPOCHS = 4
PREVIOUS = {"model.h5": b"the model of an earlier run", "weights.h5": b"the weights of an earlier run"}


@pytest.fixture(scope="module")
def slow_dataset(tmp_path_factory):
    """Enough photos that the epochs after the first take about half a second each at batch 2: a signal
    sent as epoch 2 starts lands before the last one ends."""
    return make_dataset(tmp_path_factory.mktemp("slow"), train_per_class=100, test_per_class=4)


def train_args(data, output, *extra):
    """A small from-scratch run of EPOCHS epochs: one training phase, so one backup folder."""
    return ["--data", data, "--output", output, "--arch", "logistic", "--epochs", str(EPOCHS), "--image-size", "32", "--batch-size", "2", *extra]


def train(data, output, *extra, stop_with=None, at_epoch=2, argv=None):
    """Run train_CNN.py for EPOCHS epochs in a fresh Python; with stop_with, send that signal as soon as epoch at_epoch starts.
    argv: other arguments than train_args's (tests/test_resume_fine_tune.py's).

    Returns (exit code, stdout and stderr together).
    """
    process = subprocess.Popen(
        [sys.executable, PROJECT / "train_CNN.py", *map(str, argv or train_args(data, output, *extra))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        preexec_fn=ctrl_c_as_in_a_terminal)
    watchdog = threading.Timer(600, process.kill)  # a hung run fails the test instead of hanging it
    watchdog.start()
    try:
        lines = []
        for line in process.stdout:  # one line per epoch: stdout is not a terminal
            lines.append(line)
            if stop_with and line.startswith(f"Epoch {at_epoch}/"):
                process.send_signal(stop_with)
                break
        lines.append(process.stdout.read())
        process.wait()
    finally:
        watchdog.cancel()
    return process.returncode, "".join(lines)


def train_in_process(run, data, output, *extra):
    """train_CNN.main(argv) in this process, for the runs no signal is sent to: (exit code, stdout and stderr)."""
    result = run("train_CNN.py", *train_args(data, output, *extra))
    return result.returncode, result.stdout + result.stderr


def logged_epochs(output):
    with open(output / "reports" / "training_log.csv") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def with_previous_model(output):
    output.mkdir()
    for name, data in PREVIOUS.items():
        (output / name).write_bytes(data)
    return output


def assert_stopped_cleanly(code, log, output):
    assert code == EXIT_INTERRUPTED, log
    assert "Traceback" not in log and log.count("Interrupted") == 1, log
    message = next(line for line in log.splitlines() if "Interrupted" in line)
    assert "no model file was changed" in message
    # which folder holds the checkpoint, and the command that continues the run
    assert f"kept in {short_path(output / 'checkpoint')}" in message
    assert message.endswith(f"python train_CNN.py --resume --output {short_path(output)}")
    for name, data in PREVIOUS.items():
        assert (output / name).read_bytes() == data  # byte-identical
    assert (output / "checkpoint" / "backup-train").is_dir()  # the epochs so far are kept
    assert (output / "checkpoint" / "best.weights.h5").is_file()
    finished = logged_epochs(output)
    assert finished and finished == list(range(1, len(finished) + 1)) and len(finished) < EPOCHS  # counted from 1
    return len(finished)


@pytest.fixture(scope="module")
def uninterrupted(slow_dataset, tmp_path_factory):
    """The model.h5 of the same run as the Ctrl-C test's, never stopped (float32 weights: the differences
    to measure are below float16's resolution)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    import train_CNN
    output = tmp_path_factory.mktemp("uninterrupted")
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()) as err:
        assert train_CNN.main([str(arg) for arg in train_args(slow_dataset, output, "--overwrite", "--float32-weights")]) == 0, err.getvalue()
    return output / "model.h5"


def assert_same_model(resumed, uninterrupted, photos):
    """The resumed model is the uninterrupted one, but for the order of the photos in the epochs after the stop
    (the shuffle starts again): measured 5e-4 of the kernel's norm and 3e-5 in any probability when stopped
    after epoch 1, less later. A resume that restarts the learning-rate schedule differs by 3e-3 and 1.5e-4;
    one that loses the weights, by 0.9 and 1e-3."""
    import numpy as np

    from classifier.prediction import predict_files
    models = [artifacts.load(path) for path in (resumed, uninterrupted)]
    (kernel, bias), (kernel_0, bias_0) = (model.layers[-1].get_weights() for model, _ in models)
    assert np.linalg.norm(kernel - kernel_0) <= 1e-3 * np.linalg.norm(kernel_0)
    assert np.abs(bias - bias_0).max() <= 3e-5
    paths = sorted(photos.rglob("*.jpg"))
    probabilities = [np.array([row.probabilities for row in predict_files(model, info, paths, 32)]) for model, info in models]
    assert np.abs(probabilities[0] - probabilities[1]).max() <= 1e-4


def test_ctrl_c_keeps_the_old_model_and_resume_continues_after_the_last_finished_epoch(slow_dataset, tmp_path, run, uninterrupted):
    output = with_previous_model(tmp_path / "out")
    code, log = train(slow_dataset, output, "--overwrite", "--float32-weights", stop_with=signal.SIGINT)
    finished = assert_stopped_cleanly(code, log, output)

    code, log = train_in_process(run, slow_dataset, output, "--resume")  # the old model is still there: resuming must not clobber it unasked
    assert code == EXIT_USAGE and "--resume --overwrite" in log
    assert (output / "model.h5").read_bytes() == PREVIOUS["model.h5"]

    code, log = train_in_process(run, slow_dataset, output, "--resume", "--overwrite")
    assert code == 0, log
    assert f"Resuming the run in {output} after epoch {finished} of {EPOCHS}" in log  # which run, and from where
    epochs_run = [line.split()[1] for line in log.splitlines() if line.startswith("Epoch ")]
    assert epochs_run == [f"{epoch}/{EPOCHS}" for epoch in range(finished + 1, EPOCHS + 1)]  # starts after the last finished epoch
    assert logged_epochs(output) == list(range(1, EPOCHS + 1))  # one row per epoch across both runs
    with h5py.File(output / "model.h5") as file:
        assert "model_weights" in file
    artifacts.load(output / "model.h5", output / "weights.h5")
    assert not (output / "checkpoint").exists()
    assert_same_model(output / "model.h5", uninterrupted, slow_dataset / "Test_Set")


def test_kill_during_the_first_epoch_keeps_the_old_model_and_blocks_no_new_run(slow_dataset, tmp_path):
    output = with_previous_model(tmp_path / "out")
    code, log = train(slow_dataset, output, "--overwrite", stop_with=signal.SIGTERM, at_epoch=1)
    assert code == EXIT_INTERRUPTED, log
    assert "Traceback" not in log and log.count("Interrupted") == 1, log
    for name, data in PREVIOUS.items():
        assert (output / name).read_bytes() == data  # byte-identical
    assert not runs.has_finished_epochs(output)  # no epoch to resume: the next run starts afresh
    message = next(line for line in log.splitlines() if "Interrupted" in line)
    assert f"{short_path(output)} holds nothing to resume; run the same command again" in message


# Problems found before training starts.

def test_output_whose_parent_is_a_file_is_refused_before_training(tmp_path, run):
    data = make_dataset(tmp_path / "data", train_per_class=2, test_per_class=1)
    (tmp_path / "a-file").write_text("not a folder")
    for output in (tmp_path / "a-file" / "out", tmp_path / "a-file"):
        result = run("train_CNN.py", "--data", data, "--output", output, "--arch", "logistic", "--epochs", 1, "--image-size", 32)
        assert result.returncode == EXIT_USAGE and "Epoch" not in result.stdout
        assert result.stderr.startswith(f"error: cannot write to {output} (Not a directory)") and result.stderr.count("\n") == 1, result.stderr
        assert "--output DIR" in result.stderr


def test_a_full_disk_is_found_before_training_and_leaves_nothing_in_the_way(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=2**40, used=2**40 - 5 * 2**20, free=5 * 2**20))
    with pytest.raises(UsageError, match=f"only 5 MB free in {tmp_path}: training needs about 200 MB"):
        runs.prepare_output(tmp_path, overwrite=False, resume=False)
    monkeypatch.undo()  # space freed: the next run starts without --resume or --overwrite
    assert runs.prepare_output(tmp_path, overwrite=False, resume=False) == tmp_path


def interrupted_run(output, finished_epoch=True):
    """What a run stopped by Ctrl-C leaves in its checkpoint: its settings, and the backup of its finished epochs."""
    (output / "checkpoint").mkdir(parents=True)
    (output / "checkpoint" / runs.SETTINGS_FILE).write_text(json.dumps(RunConfig(output=str(output)).to_dict()))
    if finished_epoch:
        (output / "checkpoint" / "backup-train").mkdir()


def test_a_run_stopped_before_its_first_epoch_ended_does_not_block_the_next(tmp_path):
    interrupted_run(tmp_path, finished_epoch=False)  # what a Ctrl-C during the photo scan leaves
    (tmp_path / "checkpoint" / "best.weights.h5").write_bytes(b"stale")
    runs.prepare_output(tmp_path, overwrite=False, resume=False)
    assert list((tmp_path / "checkpoint").iterdir()) == []
    with pytest.raises(UsageError, match="nothing to resume"):
        runs.resume_settings(tmp_path, {})


def test_an_interrupted_run_is_neither_clobbered_nor_resumed_unasked(tmp_path):
    interrupted_run(tmp_path)
    with pytest.raises(UsageError, match="holds an interrupted run: pass --resume to continue it, or --overwrite"):
        runs.prepare_output(tmp_path, overwrite=False, resume=False)
    (tmp_path / "model.h5").write_bytes(b"old")
    with pytest.raises(UsageError, match="pass --resume --overwrite"):
        runs.prepare_output(tmp_path, overwrite=False, resume=True)
    runs.prepare_output(tmp_path, overwrite=True, resume=True)
    assert (tmp_path / "checkpoint" / "backup-train").is_dir() and (tmp_path / "model.h5").read_bytes() == b"old"
    assert runs.resume_settings(tmp_path, {}).output == str(tmp_path)  # its settings, for --resume


# Saving is atomic.

@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path, failure):
    target = tmp_path / "model.h5"
    target.write_bytes(b"old")
    with pytest.raises(type(failure)):
        with artifacts.atomic_path(target) as temporary:
            with open(temporary, "wb") as file:
                file.write(b"half a mod")
            raise failure
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.h5"]
    with artifacts.atomic_path(target) as temporary:
        with open(temporary, "wb") as file:
            file.write(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["model.h5"]


def test_a_save_stopped_halfway_keeps_the_old_pair(tmp_path, monkeypatch):
    from classifier.model import make_model

    for name, data in PREVIOUS.items():
        (tmp_path / name).write_bytes(data)

    def stopped(*args):
        raise KeyboardInterrupt  # Ctrl-C after model.h5 is written, while weights.h5 is
    monkeypatch.setattr(artifacts, "_copy_weights", stopped)
    with pytest.raises(KeyboardInterrupt):
        artifacts.save(make_model("logistic", 32, 2), artifacts.ModelInfo(["a", "b"], 32),
                       tmp_path / "model.h5", tmp_path / "weights.h5")
    for name, data in PREVIOUS.items():  # never a new model.h5 beside the old weights.h5
        assert (tmp_path / name).read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["model.h5", "weights.h5"]
