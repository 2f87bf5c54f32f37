"""Real write failures before HDF5 meets them (classifier/artifacts.check_room): a file-size limit set
with setrlimit, as `ulimit -f` sets it, makes the kernel refuse the write (EFBIG) as a full disk does
(ENOSPC). HDF5 meeting such a failure half-way through a file crashes the process, so the model files
and checkpoints ask for their room first. (tests/test_odd_files.py runs train_CNN.py under such a limit.)"""
import errno
import os
import resource
import signal
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from conftest import PROJECT

from classifier import artifacts, import_tensorflow

import_tensorflow()
import keras  # noqa: E402

from classifier.model import make_model  # noqa: E402

PREVIOUS = {"model.h5": b"the previous model", "weights.h5": b"the previous weights"}


@contextmanager
def file_size_limit(size):
    """RLIMIT_FSIZE in this process for the block, SIGXFSZ ignored (as train_CNN.py does), both put back after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def fitted(arch, size):
    """A model after one step of Adam: its optimizer holds its slots, as at the end of an epoch."""
    keras.utils.set_random_seed(0)
    model = make_model(arch, size, 2)
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    model.fit(np.zeros((2, size, size, 3)), np.array([0, 1]), verbose=0)
    return model


def test_check_room_meets_the_file_size_limit_and_leaves_nothing(tmp_path):
    with file_size_limit(100_000):
        artifacts.check_room(tmp_path, 90_000)  # fits
        with pytest.raises(OSError) as refused:
            artifacts.check_room(tmp_path, 110_000)
    assert refused.value.errno == errno.EFBIG
    assert os.listdir(tmp_path) == []  # the probe is gone either way


SAVE_UNDER_A_LIMIT = """
import errno, resource, signal, sys
from classifier import artifacts, import_tensorflow
import_tensorflow()
from classifier.model import make_model
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    artifacts.save(make_model("logistic", 32, 2), artifacts.ModelInfo(["Cats", "Dogs"], 32), sys.argv[1], sys.argv[2])
except OSError as error:
    print(errno.errorcode[error.errno])
"""


def test_a_file_size_limit_at_the_final_save_leaves_the_previous_files(tmp_path):
    """artifacts.save under a limit its model.h5 (42 kB here) is over: an OSError, EFBIG, and the files as
    they were. In a fresh Python: without check_room, HDF5 meets the failure and the process segfaults."""
    for name, data in PREVIOUS.items():
        (tmp_path / name).write_bytes(data)
    result = subprocess.run([sys.executable, "-c", SAVE_UNDER_A_LIMIT, tmp_path / "model.h5", tmp_path / "weights.h5"],
                            cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (0, "EFBIG\n"), result.stderr[-2000:]
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == PREVIOUS  # no temporary left either


@pytest.mark.parametrize("arch", ["logistic", "classic"])
def test_the_room_asked_covers_the_files_written(tmp_path, arch):
    """hdf5_bytes is what check_room asks for: never less than the file Keras writes (else HDF5 meets the
    failure), and not so much more that a limit the file fits under is refused."""
    model = fitted(arch, 32)
    model.save_weights(tmp_path / "checkpoint.weights.h5")  # what BackupAndRestore writes: weights and optimizer
    model.save(tmp_path / "model.h5", include_optimizer=False)  # what artifacts.save writes first
    for path, variables in ((tmp_path / "checkpoint.weights.h5", model.weights + list(model.optimizer.variables)),
                            (tmp_path / "model.h5", model.weights)):
        written, asked = path.stat().st_size, artifacts.hdf5_bytes(variables)
        assert written <= asked <= 1.1 * written + 2**17, (path.name, written, asked)
