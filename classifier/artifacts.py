"""The two files a training run leaves: model.h5 (model + metadata) and weights.h5 (weights only).

model.h5 is Keras's HDF5 model file; the class names, image size and resizing method are added
as HDF5 attributes, so predict.py needs nothing else. weights.h5 is in the legacy HDF5 weights
layout: Keras 3's save_weights() refuses a name without .weights.h5, but load_weights("weights.h5")
still reads that layout, so we copy the weights group Keras wrote into model.h5 with h5py.
"""
import errno
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from . import legacy
from .config import WEIGHTS_FILE, UsageError
from .metadata import ModelInfo

@contextmanager
def atomic_path(path):
    """Yield a temporary name beside `path`; rename it over `path` only if the block succeeds.

    A crash or Ctrl-C while writing leaves the previous file untouched.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp's file is private (0600); give the mode open() would
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def hdf5_bytes(variables):
    """A generous size for an HDF5 file of these Keras variables: their bytes, plus 4 kB of headers each
    and 64 kB a file (measured: 1-3 kB each and 25 kB; a cnn checkpoint of 18.84 MB of arrays is 18.93 MB)."""
    return sum(math.prod(variable.shape) * _itemsize(variable.dtype) for variable in variables) + 4096 * len(variables) + 2**16


def _itemsize(dtype):
    return np.dtype(getattr(dtype, "name", dtype)).itemsize


def check_room(folder, size):
    """Raise the OSError (ENOSPC, EDQUOT, EFBIG...) that writing a file of `size` bytes in folder would meet now.

    HDF5 that meets a failed write half-way through a file does not raise: h5py prints tracebacks and
    the process dies of a segfault. So each HDF5 file is preceded by this probe, which asks the kernel
    for the whole file's space at once (posix_fallocate) and gives it back: it meets a full disk, a
    quota and the file-size limit (ulimit -f; train_CNN.py ignores SIGXFSZ, so that is EFBIG, not death).
    """
    handle, probe = tempfile.mkstemp(prefix=".room-", dir=folder)
    try:
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(handle, 0, size)
                return
            except OSError as error:
                if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # else a file system without it: below
                    raise
        os.lseek(handle, size - 1, os.SEEK_SET)  # a sparse file: meets the file-size limit, not a full disk
        os.write(handle, b"\0")
    finally:
        os.close(handle)
        os.remove(probe)


def save(model, info, model_path, weights_path):
    """Write model.h5 (with metadata) and weights.h5, each atomically.

    Both are written in full before either is renamed into place, so a failure or Ctrl-C while
    writing never leaves a new model.h5 beside the old weights.h5. The optimizer's state is left
    out (it would triple model.h5; --resume keeps its own checkpoint). It stores the
    weights as 16-bit floats (info.weights_dtype): files half the size, loaded back into the float32 model.
    A disk or a file-size limit too small for model.h5 is an OSError before HDF5 writes a byte (check_room).
    """
    check_room(Path(model_path).parent, hdf5_bytes(model.weights) + 2**20)  # + the model's config, a JSON attribute
    with atomic_path(model_path) as model_temporary, atomic_path(weights_path) as weights_temporary:
        model.save(model_temporary, include_optimizer=False)
        info.write(model_temporary)
        if info.weights_dtype == "float16":
            _repack_float16(model_temporary)
        _copy_weights(model_temporary, weights_temporary)


def _repack_float16(path):
    """Rewrite an HDF5 file with every float32 array stored as float16.

    A new file, not an edit in place: HDF5 never gives back the space of a deleted array.
    """
    packed = f"{path}.float16"
    with h5py.File(path, "r") as source, h5py.File(packed, "w") as target:
        target.attrs.update(source.attrs)

        def copy(name, item):
            if isinstance(item, h5py.Group):
                target.require_group(name)
            else:
                values = item[()]
                target.create_dataset(name, data=values.astype("float16") if item.dtype == "float32" else values)
            target[name].attrs.update(item.attrs)
        source.visititems(copy)
    os.replace(packed, path)


def _copy_weights(model_path, weights_path):
    with h5py.File(model_path, "r") as source, h5py.File(weights_path, "w") as target:
        weights = source["model_weights"]
        for key, value in weights.attrs.items():
            target.attrs[key] = value
        for name in weights:
            source.copy(weights[name], target, name=name)


def weights_beside(model_path):
    """The weights that belong to a model file: the weights.h5 beside it, else those inside it.

    Never the project's own weights.h5 for another folder's model.h5: a model loaded with weights
    from another run would label photos with confidence and be wrong.
    """
    beside = Path(model_path).with_name(WEIGHTS_FILE)
    return beside if beside.is_file() else Path(model_path)


def check_files(model_path, weights_path):
    for path in (model_path, weights_path):
        if not Path(path).is_file():
            raise UsageError(f"{path} not found: train a model with `python train_CNN.py` or pass --model/--weights")


def check_readable(model_path, weights_path):
    """Refuse model files that are missing, not HDF5, or not written by train_CNN.py, each with a
    UsageError naming the file, before TensorFlow loads (seconds). A Keras 2 model.h5 is legacy.load's to check."""
    check_files(model_path, weights_path)
    if legacy.keras2_version(model_path):
        return
    ModelInfo.read(model_path)
    if Path(weights_path).resolve() != Path(model_path).resolve():
        try:
            with h5py.File(weights_path, "r"):
                pass
        except OSError as error:
            raise UsageError(f"{weights_path} is not a readable HDF5 weights file ({error}); use the weights.h5 written with {model_path}")


def load(model_path, weights_path=None, class_names=None):
    """Load model.h5 (in Keras safe mode: no arbitrary code), then its weights (weights_beside
    unless weights_path is given). A model.h5 from a Keras 2 script is rebuilt by legacy.py;
    class_names names its classes. Returns (model, ModelInfo). Every failure is a UsageError naming the file.
    """
    weights_path = weights_beside(model_path) if weights_path is None else weights_path
    check_readable(model_path, weights_path)
    if legacy.keras2_version(model_path):
        return legacy.load(model_path, weights_path, class_names)
    import keras

    info = ModelInfo.read(model_path)
    try:
        model = keras.models.load_model(model_path, compile=False, safe_mode=True)
    except Exception as error:
        if "safe_mode" in str(error):  # Keras refused to deserialize Python code, e.g. a Lambda layer
            raise UsageError(f"{model_path} refused by Keras's safe mode: it holds Python code (such as a Lambda layer) "
                             "that could do anything when loaded; use a model.h5 written by train_CNN.py")
        raise UsageError(f"{model_path} could not be loaded ({_first_line(error)}); train one with train_CNN.py")
    if Path(weights_path).resolve() != Path(model_path).resolve():
        try:
            model.load_weights(weights_path)
        except Exception as error:
            raise UsageError(f"{weights_path} does not fit the model in {model_path} ({_first_line(error)}); "
                             "use the weights.h5 written with that model.h5")
    return model, info


def _first_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
