"""Helpers the benchmark scripts share: sampled folders of links, a saved model, timing and memory.

The scripts run from the project root as `python benchmarks/NAME.py`; importing this module puts
the project root on sys.path so they can import the `classifier` package.
"""
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SHARED_DATASET = PROJECT.parent / "shared" / "datasets" / "cats_vs_dogs"
NEITHER = SHARED_DATASET.parent / "neither"  # photos of neither class (its README)
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from classifier import config  # noqa: E402  (needs the path above)
from classifier.images import configure_pillow, find_images  # noqa: E402

configure_pillow()  # as the scripts do first: the benchmarks call the package directly


def machine_line():
    """One line saying what the figures were measured on, and whether something else was running."""
    load = os.getloadavg()[0]
    busy = " -- other work is running, figures are contended" if load > 0.5 else ""
    return f"{os.cpu_count()} CPU cores, load average {load:.2f} at start{busy}"


def require_shared_dataset():
    if not SHARED_DATASET.is_dir():
        sys.exit(f"error: {SHARED_DATASET} not found: these benchmarks sample photos from it")


def look_alike_animals(paths):
    """Which photos of NEITHER are its animals (wolves, foxes, bears...; files named inet-animal_*),
    the hard look-alikes for the unknown answer, counted apart from its objects, food and scenes."""
    import numpy as np
    return np.array([Path(path).name.startswith("inet-animal") for path in paths], bool)


def sample_photos(split_dir, count, seed):
    """`count` photos of split_dir (None: all), shared evenly between its class folders, at random
    (seeded). Each class is shuffled once and cut, so a smaller sample is part of a larger one with
    the same seed: a curve over sample sizes does not mix in a new draw at every point.

    Returns {class name: [paths]}.
    """
    from classifier.data import class_folders

    classes = class_folders(split_dir)
    chosen = {}
    for index, name in enumerate(classes):
        paths, _ = find_images([Path(split_dir, name)])
        share = len(paths) if count is None else count // len(classes) + (index < count % len(classes))
        if share > len(paths):
            sys.exit(f"error: {split_dir / name} has {len(paths)} photos, {share} asked for")
        random.Random(f"{seed}-{name}").shuffle(paths)
        chosen[name] = paths[:share]
    return chosen


def link_photos(chosen, target_dir):
    """Make target_dir/<class>/ hold symbolic links to the chosen photos (nothing is copied)."""
    for name, paths in chosen.items():
        folder = Path(target_dir, name)
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            os.symlink(path.resolve(), folder / path.name)
    return Path(target_dir)


def linked_dataset(target_dir, train_count, test_count, seed):
    """target_dir/Training_Set and Test_Set: links to train_count and test_count (None: all) shared photos."""
    for split, count in ((config.TRAIN_DIR, train_count), (config.TEST_DIR, test_count)):
        link_photos(sample_photos(SHARED_DATASET / split, count, seed), Path(target_dir, split))
    return Path(target_dir)


def warm_file_cache(folder):
    """Read every file once, so the first measured pass does not pay for the disk."""
    for path in find_images([folder])[0]:
        path.read_bytes()


def save_untrained_model(folder, arch=config.DEFAULT_ARCH):
    """A model.h5/weights.h5 pair as train_CNN.py writes it (float16 weights), with the weights it
    starts from (ImageNet for the pretrained default). Speed and memory do not depend on the
    weight values, so no training is needed."""
    quiet_tensorflow()
    import keras
    from classifier import artifacts
    from classifier.model import MODELS, make_model

    size = MODELS[arch].image_size
    info = artifacts.ModelInfo(["Cats", "Dogs"], size, model=arch, keras_version=keras.__version__, weights_dtype="float16")
    model_path, weights_path = Path(folder, config.MODEL_FILE), Path(folder, config.WEIGHTS_FILE)
    artifacts.save(make_model(arch, size, 2), info, model_path, weights_path)
    return model_path


def model_file(given, workdir):
    """The --model a script was given, else an untrained default model saved in workdir; says which."""
    if given:
        print(f"model: {given}")
        return Path(given)
    print(f"model: untrained {config.DEFAULT_ARCH} (pass --model FILE for a trained one)")
    return save_untrained_model(workdir)


def timed(function, *args, **kwargs):
    """Call function; return (its result, seconds it took)."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def peak_rss_mb():
    """This process's peak resident memory so far (ru_maxrss is in KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def run_measured(command, **popen_options):
    """Run a command to the end; return (exit code, wall seconds, its peak resident memory in MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, **popen_options)
    _, status, usage = os.wait4(process.pid, 0)  # the rusage of this child alone
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss / 2**20 if sys.platform == "darwin" else usage.ru_maxrss / 2**10
    return process.returncode, seconds, peak


def quiet_tensorflow():
    """Import TensorFlow and Keras without their C++ start-up lines (as the CLIs do)."""
    from classifier import import_tensorflow
    return import_tensorflow()
