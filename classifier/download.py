"""`train_CNN.py --download-dataset`: fetch Microsoft's "Kaggle Cats and Dogs" photos and lay them
out as DATA/Training_Set/{Cats,Dogs} and DATA/Test_Set/{Cats,Dogs}.

keras.utils.get_file downloads the zip (about 800 MB) into the Keras cache (~/.keras/datasets, or
$KERAS_HOME/datasets) and keeps it there, so a second run does not download again; it then
extracts it. The archive holds PetImages/Cat/*.jpg and PetImages/Dog/*.jpg (12,500 each), a few
of them broken: every photo is decoded once, and those that training could not read are left out.
"""
import os
import random
import shutil
import sys
from pathlib import Path

from . import import_tensorflow
from .config import TEST_DIR, TRAIN_DIR, UsageError
from .images import BadImage, check_images, is_image_name

DATASET_URL = "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip"
ARCHIVE_CLASSES = {"Cat": "Cats", "Dog": "Dogs"}  # folder in the archive -> class folder here
TEST_FRACTION = 0.2


def download_dataset(data_dir, url=DATASET_URL, seed=0, cache_dir=None):
    """Download (or reuse the cached) archive, check every photo, and add the good ones to data_dir at 80:20.

    Files already in data_dir are never replaced; a photo already in either set is not added again,
    so running twice (or after an interruption) only fills in what is missing. cache_dir replaces
    ~/.keras for the downloaded zip.
    """
    data_dir = Path(data_dir)
    extracted = fetch(url, cache_dir)
    try:
        source = _pet_images(extracted, url)
        counts = {}
        for archive_name, class_name in ARCHIVE_CLASSES.items():
            photos = sorted(path for path in (source / archive_name).iterdir() if is_image_name(path))
            print(f"Checking the {len(photos)} photos in {source.name}/{archive_name}")
            good = check_photos(photos, source.parent)
            random.Random(f"{seed}-{class_name}").shuffle(good)  # seeded: the same split on every run
            test_count = round(len(good) * TEST_FRACTION)
            splits = {TEST_DIR: good[:test_count], TRAIN_DIR: good[test_count:]}
            for split, paths in splits.items():
                counts[split, class_name] = place(paths, data_dir, split, class_name)
    finally:
        # The extracted copy is scratch: get_file extracts the cached zip again on every call.
        shutil.rmtree(extracted, ignore_errors=True)
    for split in (TRAIN_DIR, TEST_DIR):
        added = ", ".join(f"{counts[split, name][0]} {name}" for name in ARCHIVE_CLASSES.values())
        kept = sum(counts[split, name][1] for name in ARCHIVE_CLASSES.values())
        print(f"{data_dir / split}: added {added}" + (f" ({kept} already there, kept)" if kept else ""))
    print(f"Train with: python train_CNN.py --data {data_dir}")


def fetch(url, cache_dir=None):
    """The folder keras.utils.get_file extracted the archive into; every failure is a UsageError."""
    import_tensorflow()
    import keras

    name = os.path.basename(url.rstrip("/")) or "kagglecatsanddogs.zip"
    try:
        if cache_dir:  # get_file would quietly fall back to /tmp/.keras if it did not exist
            os.makedirs(cache_dir, exist_ok=True)
        return Path(keras.utils.get_file(fname=name, origin=url, extract=True, cache_dir=cache_dir))
    except Exception as error:  # get_file wraps URL errors in a bare Exception
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"could not download {url} ({reason}): check the internet connection and try again, "
                         "or use a Training_Set/ and Test_Set/ of your own")


def _pet_images(extracted, url):
    """The folder holding Cat/ and Dog/ (PetImages/ in Microsoft's archive)."""
    for folder in (extracted / "PetImages", extracted):
        if all((folder / name).is_dir() for name in ARCHIVE_CLASSES):
            return folder
    raise UsageError(f"the archive from {url} does not hold PetImages/Cat and PetImages/Dog; delete it from "
                     f"{extracted.parent} and run again to download it afresh")


def check_photos(paths, root):
    """The paths training can read; each other one is named (relative to root) in a warning line."""
    import keras

    good, bad_ones = [], []
    progress = keras.utils.Progbar(len(paths), unit_name="photo")
    for index, (path, result) in enumerate(check_images(paths, image_size=None), 1):
        if isinstance(result, BadImage):
            bad_ones.append(result)
        else:
            good.append(path)
        if index % 500 == 0 or index == len(paths):
            progress.update(index)
    for bad in bad_ones:  # after the progress bar, not through it
        print(f"warning: leaving out {Path(bad.path).relative_to(root)}: {bad.reason}", file=sys.stderr)
    return good


def place(paths, data_dir, split, class_name):
    """Move photos into DATA/split/class_name as cat.123.jpg; returns (added, already there)."""
    target = data_dir / split / class_name
    added = kept = 0
    try:
        target.mkdir(parents=True, exist_ok=True)
        for path in paths:
            name = f"{class_name.lower().rstrip('s')}.{path.name}"
            if any((data_dir / other / class_name / name).exists() for other in (TRAIN_DIR, TEST_DIR)):
                kept += 1
                continue
            shutil.move(path, target / name)
            added += 1
    except OSError as error:
        raise UsageError(f"cannot write to {target} ({error.strerror or error}): pass --data DIR with a writable folder and free space")
    return added, kept
