"""Helpers the benchmark scripts share: sample folders of links, a saved model, timing and memory.

The scripts run from the project root as `python benchmarks/NAME.py`; importing this module puts
the project root on sys.path so they can import the `classifier` package.
"""
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SHARED_DATASET = PROJECT.parent / "shared" / "datasets" / "cats_vs_dogs"
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from classifier import config  # noqa: E402  (needs the path above)
from classifier.images import find_images  # noqa: E402


def machine_line():
    """One line saying what the figures were measured on, and whether something else was running."""
    load = os.getloadavg()[0]
    cores = os.cpu_count()
    busy = " -- other work is running, figures are contended" if load > 0.5 else ""
    return f"{cores} CPU cores, load average {load:.2f} at start{busy}"


def require_shared_dataset():
    if not SHARED_DATASET.is_dir():
        sys.exit(f"error: {SHARED_DATASET} not found: these benchmarks sample photos from it")


def sample_photos(split_dir, count, seed):
    """`count` photos from split_dir, half from each class folder, chosen at random (seeded).

    Returns {class name: [paths]}.
    """
    rng = random.Random(seed)
    classes = sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())
    chosen = {}
    for index, name in enumerate(classes):
        share = count // len(classes) + (1 if index < count % len(classes) else 0)
        paths, _ = find_images([Path(split_dir, name)])
        if share > len(paths):
            sys.exit(f"error: {split_dir / name} has {len(paths)} photos, {share} asked for")
        chosen[name] = rng.sample(paths, share)
    return chosen


def link_photos(chosen, target_dir):
    """Make target_dir/<class>/ hold symbolic links to the chosen photos (no copies)."""
    for name, paths in chosen.items():
        folder = Path(target_dir, name)
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            os.symlink(path.resolve(), folder / path.name)
    return Path(target_dir)


def warm_file_cache(folder):
    """Read every file once, so the first measured pass does not pay for the disk."""
    for path in find_images([folder])[0]:
        path.read_bytes()


def save_untrained_model(folder, kind="cnn", image_size=config.IMAGE_SIZE):
    """A model.h5/weights.h5 pair as train_CNN.py writes it, with freshly initialised weights.

    Speed and memory do not depend on the weight values, so no training is needed.
    """
    from classifier import artifacts, import_tensorflow
    import_tensorflow()
    import keras
    from classifier.model import make_model

    model = make_model(kind, image_size)
    metadata = {"class_names": ["Cats", "Dogs"], "image_size": image_size, "interpolation": config.INTERPOLATION,
                "model": kind, "test_accuracy": None, "keras_version": keras.__version__}
    model_path, weights_path = Path(folder, config.MODEL_FILE), Path(folder, config.WEIGHTS_FILE)
    artifacts.save(model, metadata, model_path, weights_path)
    return model_path, weights_path


def timed(function, *args, **kwargs):
    """Call function; return (its result, seconds it took)."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def median(values):
    return statistics.median(values)


def peak_rss_mb():
    """This process's peak resident memory so far (ru_maxrss is in KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def run_measured(command, **popen_options):
    """Run a command to the end; return (exit code, wall seconds, its peak resident memory in MB)."""
    import subprocess

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
