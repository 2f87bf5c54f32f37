"""Odd files and odd moments (issue 15): phones' photo formats; things named like photos that are
not files; a folder that cannot be read; Ctrl-C or kill while predict.py labels a folder; a disk
that fills up, or an output made read-only, while training."""
import csv
import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager, suppress

import numpy as np
import pytest
from PIL import Image

from classifier import artifacts
from classifier.config import EXIT_INTERRUPTED, EXIT_SOME_INPUTS_BAD, EXIT_USAGE, IMAGE_EXTENSIONS
from classifier.data import image_dataset, labelled_samples, load_image
from classifier.images import BadImage, check_images, check_photo, find_images, open_image
from conftest import COLOURS, PROJECT, ctrl_c_as_in_a_terminal, make_dataset, make_photo

SIZE = 16
PREVIOUS = {"model.h5": b"the model of an earlier run", "weights.h5": b"the weights of an earlier run"}
INTERRUPTED = "Interrupted: the rows labelled before the stop are kept; run the same command again to finish."


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained logistic model saved as train_CNN.py saves one: these tests need labels, not good ones."""
    from classifier.model import make_model

    folder = tmp_path_factory.mktemp("model")
    info = artifacts.ModelInfo(list(COLOURS), SIZE, model="logistic")
    artifacts.save(make_model("logistic", SIZE, len(COLOURS)), info, folder / "model.h5", folder / "weights.h5")
    return folder / "model.h5"


def solid(path, colour, size=(40, 30), **save_options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, **save_options)
    return path


# 1. Phones' formats: HEIC/HEIF (pillow-heif), AVIF and WebP, read the same way by training and predict.py.

PHONE_FORMATS = {  # file name -> Pillow save options (lossless or nearly, so the colour is known)
    "iphone.heic": {"format": "HEIF", "quality": -1}, "camera.HEIF": {"format": "HEIF", "quality": -1},
    "android.avif": {"format": "AVIF", "quality": 100}, "web.webp": {"format": "WEBP", "lossless": True},
}


def test_phone_formats_are_in_the_one_extension_list():
    for extension in (".heic", ".heif", ".avif", ".webp"):
        assert extension in IMAGE_EXTENSIONS


@pytest.mark.parametrize("name", PHONE_FORMATS)
def test_a_phone_format_is_found_and_read_in_its_colours(tmp_path, name):
    path = solid(tmp_path / "photos" / name, (200, 100, 50), **PHONE_FORMATS[name])
    assert find_images([tmp_path / "photos"]) == ([path], [])
    assert check_photo(path, 32).pillow is True  # TensorFlow decodes none of them
    image = load_image(path, 8)
    assert image.shape == (8, 8, 3) and np.abs(image.astype(int) - (200, 100, 50)).max() <= 6


def test_training_and_predict_see_the_same_pixels_of_phone_photos(tmp_path, model_file):
    from classifier.prediction import load_classifier, predict_files, probabilities

    split = tmp_path / "Training_Set"
    for index, (name, options) in enumerate(PHONE_FORMATS.items()):
        make_photo(split / "Cats" / name, COLOURS["Cats"], seed=index, **options)
    make_photo(split / "Dogs" / "plain.png", COLOURS["Dogs"])  # read by TensorFlow, in the same batch
    samples, bad = labelled_samples(split, list(COLOURS), SIZE)
    assert bad == 0 and len(samples) == len(PHONE_FORMATS) + 1
    training_pixels = next(iter(image_dataset(samples, SIZE, batch_size=8)))[0].numpy()
    for sample, pixels in zip(samples, training_pixels):
        np.testing.assert_array_equal(pixels, load_image(sample.path, SIZE))  # what predict.py reads, to the bit

    model, info = load_classifier(model_file)
    paths = [sample.path for sample in samples]
    predicted = np.stack([prediction.probabilities for prediction in predict_files(model, info, paths, batch_size=2)])
    expected = probabilities(model.predict_on_batch(training_pixels))
    np.testing.assert_allclose(predicted, expected, atol=1e-5)
    assert [sample.pillow for sample in samples] == [True] * len(PHONE_FORMATS) + [False]


def test_predict_py_labels_phone_photos(tmp_path, model_file, run):
    for name, options in PHONE_FORMATS.items():
        solid(tmp_path / "photos" / name, COLOURS["Cats"], **options)
    result = run("predict.py", tmp_path / "photos", "--model", model_file)
    assert result.returncode == 0, result.stderr
    assert sorted(line.split("\t")[0] for line in result.stdout.splitlines()) == sorted(
        str(tmp_path / "photos" / name) for name in PHONE_FORMATS)


def test_a_heic_photo_without_pillow_heif_names_the_package(tmp_path, monkeypatch):
    path = solid(tmp_path / "iphone.heic", (200, 100, 50), format="HEIF", quality=-1)
    monkeypatch.setattr(Image, "ID", [kind for kind in Image.ID if kind != "HEIF"])  # as if never registered
    with pytest.raises(BadImage, match="pip install pillow-heif"):
        check_photo(path, 32)


# 2. Things named like photos that are not files: refused before they are opened, never a hang.

def special_files(folder):
    """A FIFO, a socket, a link to a device, a loop of links, and a folder named like a photo (which
    holds a photo). Returns ({name: the reason given}, the FIFOs, the socket to close)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "pipe.jpg")  # open() of a FIFO waits for a writer: forever
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.jpg"))
    os.symlink("/dev/zero", folder / "zero.jpg")  # a device: reading never ends
    os.symlink(folder / "loop-b.jpg", folder / "loop-a.jpg")
    os.symlink(folder / "loop-a.jpg", folder / "loop-b.jpg")
    make_photo(folder / "album.jpg" / "inside.jpg", COLOURS["Cats"])  # a folder named x.jpg: walked, as any folder
    reasons = {"pipe.jpg": "a named pipe (FIFO), not a photo file", "socket.jpg": "a socket, not a photo file",
               "zero.jpg": "a device, not a photo file", "loop-a.jpg": "a loop of symbolic links that never reaches a file",
               "loop-b.jpg": "a loop of symbolic links that never reaches a file"}
    return reasons, [folder / "pipe.jpg"], server


@contextmanager
def never_blocks(fifos, seconds=60):
    """Fail instead of hanging: after `seconds`, open each FIFO for writing, which frees a reader stuck
    in open(), and the test then fails on `stuck`."""
    done, stuck = threading.Event(), []

    def unblock():
        if not done.wait(seconds):
            stuck.append(True)
            for fifo in fifos:
                with suppress(OSError):
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    try:
        yield stuck
    finally:
        done.set()
        watchdog.join()


def test_special_files_are_one_bad_image_each_and_never_block(tmp_path):
    reasons, fifos, server = special_files(tmp_path / "photos")
    with server, never_blocks(fifos) as stuck:
        found, _ = find_images([tmp_path / "photos"])
        results = dict(check_images(found, 32))
        with pytest.raises(BadImage, match="a folder, not a photo file"):  # named explicitly to the reader
            open_image(tmp_path / "photos" / "album.jpg")
    assert not stuck, "a special file blocked the check"
    assert sorted(path.name for path in found) == sorted([*reasons, "inside.jpg"])
    for path, result in results.items():
        if path.name == "inside.jpg":
            assert result.pillow is False
        else:
            assert isinstance(result, BadImage) and result.reason == reasons[path.name], (path, result)


def test_training_skips_special_files_with_a_warning_each(tmp_path, capsys):
    split = tmp_path / "Training_Set"
    reasons, fifos, server = special_files(split / "Cats")
    make_photo(split / "Dogs" / "dog.jpg", COLOURS["Dogs"])
    with server, never_blocks(fifos) as stuck:
        samples, bad = labelled_samples(split, list(COLOURS), 32)
    assert not stuck
    assert bad == len(reasons) and [sample.path.name for sample in samples] == ["inside.jpg", "dog.jpg"]
    warnings = capsys.readouterr().err.splitlines()
    assert sorted(warnings) == sorted(f"warning: skipping {split / 'Cats' / name}: {reason}" for name, reason in reasons.items())


def test_predict_py_names_each_special_file_and_exits_1_without_hanging(tmp_path, model_file, run):
    reasons, fifos, server = special_files(tmp_path / "photos")
    os.mkfifo(tmp_path / "named.png")  # a FIFO named on the command line, too
    with server, never_blocks([*fifos, tmp_path / "named.png"]) as stuck:
        result = run("predict.py", tmp_path / "photos", tmp_path / "named.png", "--model", model_file)
    assert not stuck
    assert result.returncode == EXIT_SOME_INPUTS_BAD, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [str(tmp_path / "photos" / "album.jpg" / "inside.jpg")]
    errors = [line for line in result.stderr.splitlines() if not line.startswith("Model: ")]
    expected = [f"error: {tmp_path / 'photos' / name}: {reason}" for name, reason in reasons.items()]
    expected.append(f"error: {tmp_path / 'named.png'}: a named pipe (FIFO), not a photo file")
    assert sorted(errors[:-1]) == sorted(expected) and errors[-1] == "1 image labelled, 6 could not be read", result.stderr


def unlistable(monkeypatch, folder):
    """os.scandir(folder) refused, as for a folder without read permission (root reads any, so it is simulated)."""
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(folder):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", scandir)


def test_a_folder_that_cannot_be_read_is_named_and_the_walk_goes_on(tmp_path, monkeypatch, capsys):
    photos = tmp_path / "photos"
    good = [make_photo(photos / "a.jpg", (0, 0, 0)), make_photo(photos / "z" / "c.jpg", (0, 0, 0))]
    make_photo(photos / "locked" / "b.jpg", (0, 0, 0))
    unlistable(monkeypatch, photos / "locked")
    assert find_images([photos]) == (good, [])
    assert capsys.readouterr().err == f"warning: cannot read the folder {photos / 'locked'} (Permission denied); its photos are left out\n"


def test_training_walks_on_past_a_class_sub_folder_it_cannot_read(tmp_path, monkeypatch, capsys):
    split = tmp_path / "Training_Set"
    make_photo(split / "Cats" / "cat.jpg", COLOURS["Cats"])
    make_photo(split / "Cats" / "locked" / "hidden.jpg", COLOURS["Cats"])
    make_photo(split / "Dogs" / "dog.jpg", COLOURS["Dogs"])
    unlistable(monkeypatch, split / "Cats" / "locked")
    samples, bad = labelled_samples(split, list(COLOURS), 32)
    assert [sample.path.name for sample in samples] == ["cat.jpg", "dog.jpg"] and bad == 0
    assert "warning: cannot read the folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder: the simulated tests above stand in")
def test_a_folder_without_read_permission(tmp_path, capsys):
    make_photo(tmp_path / "a.jpg", (0, 0, 0))
    make_photo(tmp_path / "locked" / "b.jpg", (0, 0, 0))
    (tmp_path / "locked").chmod(0)
    try:
        assert [path.name for path in find_images([tmp_path])[0]] == ["a.jpg"]
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert "warning: cannot read the folder" in capsys.readouterr().err


# 3. Ctrl-C or kill while predict.py labels a folder: exit 130, one line, the rows so far kept.

def read_csv(path):
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["path", "label", "confidence", "unknown_score"]
    assert all(len(row) == 4 and 0 <= float(row[2]) <= 1 for row in rows[1:])
    return rows[1:]


def test_ctrl_c_in_predict_keeps_a_valid_csv_of_the_rows_labelled(tmp_path, model_file):
    """In a fresh Python, as in a terminal. (`kill`, SIGTERM, takes the same way out: the test after this one.)"""
    for index in range(400):  # far more than are labelled in the moment the signal takes
        make_photo(tmp_path / "photos" / f"{index:03}.jpg", COLOURS["Cats"], size=(20, 20), seed=index)
    process = subprocess.Popen([sys.executable, PROJECT / "predict.py", tmp_path / "photos", "--model", model_file,
                                "--csv", tmp_path / "labels.csv", "--batch-size", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ctrl_c_as_in_a_terminal)
    watchdog = threading.Timer(120, process.kill)  # a hang fails the test instead of hanging it
    watchdog.start()
    try:
        first = process.stdout.readline()  # labelling has begun
        process.send_signal(signal.SIGINT)
        printed, errors = first + process.stdout.read(), process.stderr.read()  # not communicate(): it skips what readline buffered
        process.wait()
    finally:
        watchdog.cancel()
    assert process.returncode == EXIT_INTERRUPTED, errors
    assert [line for line in errors.splitlines() if not line.startswith("Model: ")] == [INTERRUPTED], errors
    printed = [line.split("\t") for line in printed.splitlines()]
    kept = read_csv(tmp_path / "labels.csv")
    assert 1 <= len(printed) < 400 and [row[:3] for row in kept[:len(printed)]] == printed  # every row printed is in the file
    assert len(kept) - len(printed) <= 1  # at most the row written to the file as the signal came


def test_kill_with_json_output_prints_a_valid_list_of_the_rows_labelled(tmp_path, model_file, run, monkeypatch):
    import classifier.prediction

    for index in range(6):
        make_photo(tmp_path / "photos" / f"{index}.jpg", COLOURS["Dogs"], seed=index)
    real_predict_files = classifier.prediction.predict_files

    def killed_at_the_third(*args, **kwargs):
        for index, result in enumerate(real_predict_files(*args, **kwargs)):
            if index == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from another terminal
            yield result
    monkeypatch.setattr(classifier.prediction, "predict_files", killed_at_the_third)
    before = signal.getsignal(signal.SIGTERM)
    result = run("predict.py", tmp_path / "photos", "--model", model_file, "--json", "--csv", tmp_path / "labels.csv")
    assert result.returncode == EXIT_INTERRUPTED and result.stderr.splitlines()[-1] == INTERRUPTED, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 2  # the Model: line, then that one
    rows = json.loads(result.stdout)
    assert [row["path"] for row in rows] == [str(tmp_path / "photos" / f"{index}.jpg") for index in (0, 1)]
    assert [row[0] for row in read_csv(tmp_path / "labels.csv")] == [row["path"] for row in rows]
    assert signal.getsignal(signal.SIGTERM) == before  # predict.main puts the handler back


# 4. A full disk or a read-only output while training: one line, exit 2, the old model untouched,
#    the checkpoint kept, and --resume finishes the run.

def train(run, data, output, *extra):
    return run("train_CNN.py", "--data", data, "--output", output, "--arch", "logistic", "--epochs", 2,
               "--image-size", 32, "--batch-size", 4, "--overwrite", *extra)


def with_previous_model(output):
    output.mkdir(parents=True)
    for name, data in PREVIOUS.items():
        (output / name).write_bytes(data)
    return output


def assert_one_line_and_nothing_lost(result, output, what, reason):
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]  # the dataset check's
    assert errors == [f"error: cannot write {what} in {output} ({reason}); the earlier model.h5 and weights.h5 are "
                      "untouched and the finished epochs kept: free some space or make the folder writable, then run "
                      "the same command again with --resume"], result.stderr
    for name, data in PREVIOUS.items():
        assert (output / name).read_bytes() == data
    assert sorted(name for name in os.listdir(output) if name.startswith(".")) == []  # no half-written temporary
    assert (output / "checkpoint" / "run.json").is_file()


def test_a_disk_full_at_the_final_save(tmp_path, run, monkeypatch):
    data = make_dataset(tmp_path / "data", train_per_class=4, test_per_class=2)
    output = with_previous_model(tmp_path / "out")

    def disk_full(*args):  # model.h5 is written under a temporary name; weights.h5 meets a full disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(artifacts, "_copy_weights", disk_full)
    result = train(run, data, output)
    assert_one_line_and_nothing_lost(result, output, "model.h5 and weights.h5", "No space left on device")
    assert (output / "checkpoint" / "after-train.weights.h5").is_file()  # both epochs done: resume only saves
    monkeypatch.undo()
    resumed = train(run, data, output, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (output / "model.h5").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n" and not (output / "checkpoint").exists()


def test_an_output_made_read_only_during_an_epoch(tmp_path, run, monkeypatch):
    import keras

    data = make_dataset(tmp_path / "data", train_per_class=4, test_per_class=2)
    output = with_previous_model(tmp_path / "out")
    real_save_weights, backups = keras.Model.save_weights, []

    def read_only_from_epoch_2(self, filepath, *args, **kwargs):
        if "backup" in str(filepath):  # BackupAndRestore's save at the end of each epoch
            backups.append(filepath)
            if len(backups) == 2:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(filepath))
        return real_save_weights(self, filepath, *args, **kwargs)
    monkeypatch.setattr(keras.Model, "save_weights", read_only_from_epoch_2)
    result = train(run, data, output)
    assert_one_line_and_nothing_lost(result, output, "the checkpoint", "Read-only file system")
    assert any((output / "checkpoint" / "backup-train").iterdir())  # epoch 1, for --resume
    monkeypatch.undo()
    resumed = train(run, data, output, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    with open(output / "reports" / "training_log.csv") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["1", "2"]  # epoch 2 done once, after the resume


def test_a_real_write_failure_while_training_is_one_line(tmp_path):
    """Not a mock: the kernel refuses writes past a file-size limit (EFBIG), as a full disk refuses them (ENOSPC).
    HDF5 meeting that half-way through the checkpoint crashed the process (a segfault in h5py, after
    tracebacks); artifacts.check_room asks for the file's room first, and train_CNN.py ignores SIGXFSZ."""
    data = make_dataset(tmp_path / "data", train_per_class=4, test_per_class=2)
    output = with_previous_model(tmp_path / "out")

    def small_files():  # in the child: the checkpoint (~30 kB) is over the limit, run.json is not
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # as a shell leaves it: train_CNN.py must ignore it itself
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    result = subprocess.run([sys.executable, PROJECT / "train_CNN.py", "--data", data, "--output", output, "--arch", "logistic",
                             "--epochs", "1", "--image-size", "32", "--overwrite"],
                            preexec_fn=small_files, capture_output=True, text=True, timeout=300)
    assert_one_line_and_nothing_lost(result, output, "the checkpoint", "File too large")


def test_a_disk_filling_up_during_training_stops_it_in_one_line_before_the_checkpoint(tmp_path, run, monkeypatch):
    import collections

    from classifier import training

    data = make_dataset(tmp_path / "data")
    room = iter([10 * 2**30])  # plenty when the run starts (prepare_output), then 5 MB
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(training.shutil, "disk_usage", lambda path: usage(0, 0, next(room, 5 * 2**20)))
    result = run("train_CNN.py", "--data", data, "--output", tmp_path / "run", "--arch", "logistic",
                 "--image-size", 32, "--epochs", 2)
    assert result.returncode == 2
    assert "only 5 MB left in" in result.stderr and "--resume" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run" / "model.h5").exists() and (tmp_path / "run" / "checkpoint").is_dir()
