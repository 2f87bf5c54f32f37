"""The input pipeline: a folder of class sub-folders becomes a tf.data stream of image batches.

Keras 3 removed ImageDataGenerator; its successor is keras.utils.image_dataset_from_directory,
which decodes and resizes with TensorFlow in parallel. Augmentation and rescaling are layers of
the model itself (model.py), so they travel inside model.h5.
"""
import os
import sys
import tempfile
from pathlib import Path

from . import import_tensorflow
from .config import INTERPOLATION, TEST_DIR, TRAIN_DIR, UsageError
from .images import BadImage, check_training_images, is_image_name, save_upright


def class_folders(split_dir):
    """The class sub-folders of a split, sorted: their order fixes the labels (0, 1)."""
    return sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir() and not entry.name.startswith("."))


def check_layout(data_dir):
    """Check DATA/Training_Set and DATA/Test_Set hold the same two class folders; return their names."""
    data_dir = Path(data_dir)
    names = {}
    for split in (TRAIN_DIR, TEST_DIR):
        split_dir = data_dir / split
        if not split_dir.is_dir():
            raise UsageError(f"{split_dir} not found: --data must hold {TRAIN_DIR}/ and {TEST_DIR}/, each with one folder per class")
        names[split] = class_folders(split_dir)
        if len(names[split]) != 2:
            found = ", ".join(names[split]) or "none"
            raise UsageError(f"{split_dir} must hold exactly 2 class folders (found {len(names[split])}: {found}); this toolkit trains two-class models")
    if names[TRAIN_DIR] != names[TEST_DIR]:
        raise UsageError(
            f"the class folders differ: {data_dir / TRAIN_DIR} has {', '.join(names[TRAIN_DIR])} but "
            f"{data_dir / TEST_DIR} has {', '.join(names[TEST_DIR])}; give both sets the same class folders")
    return names[TRAIN_DIR]


def list_class_files(split_dir, class_names):
    """The image files of each class folder, walked as image_dataset_from_directory walks them."""
    files = {}
    for name in class_names:
        files[name] = sorted(
            Path(root, file) for root, _, names in os.walk(Path(split_dir, name)) for file in names if is_image_name(file))
    return files


def scan_split(split_dir, class_names):
    """Decode every image once; warn about each unreadable one.

    Returns (good files per class, bad count, the set of good files with an EXIF rotation).
    """
    files = list_class_files(split_dir, class_names)
    good, bad_count, rotated = {}, 0, set()
    for name, paths in files.items():
        good[name] = []
        for path, result in check_training_images(paths):
            if isinstance(result, BadImage):
                bad_count += 1
                print(f"warning: skipping {result}", file=sys.stderr)
                continue
            good[name].append(path)
            if result:
                rotated.add(path)
        if not good[name]:
            raise UsageError(f"{Path(split_dir, name)} has no readable images: put .jpg or .png photos of {name} there")
    return good, bad_count, rotated


def _view_of_good_files(good, rotated, workdir, image_size):
    """A folder of links to the checked files only, for image_dataset_from_directory.

    Read directly, the split would also give TensorFlow the files the check left out: bad ones,
    and hidden names such as macOS's ._photo.jpg, which stop training mid-epoch. Links are
    named by number (a file name TensorFlow cannot encode, or one near the length limit, is
    fine), and photos with an EXIF rotation become upright copies, as predict.py sees them.
    """
    for name, paths in good.items():
        os.makedirs(Path(workdir, name))
        for index, path in enumerate(paths):
            if path in rotated:
                save_upright(path, Path(workdir, name, f"{index:06d}.png"), image_size)
                continue
            link = Path(workdir, name, f"{index:06d}{path.suffix.lower()}")
            try:
                os.symlink(os.path.abspath(path), link)
            except OSError:  # no symlinks (Windows without developer mode): a hard link, then a copy
                try:
                    os.link(path, link)
                except OSError:
                    import shutil
                    shutil.copyfile(path, link)
    return workdir


def image_dataset(split_dir, class_names, image_size, batch_size, shuffle=False, seed=None):
    """Stream a split as batches of (uint8-valued float images, 0/1 labels), cached after the first pass.

    Returns (dataset, number of images, number of skipped files).
    """
    good, bad_count, rotated = scan_split(split_dir, class_names)  # before TensorFlow loads: layout errors answer at once
    tf = import_tensorflow()
    import keras

    count = sum(len(paths) for paths in good.values())
    # The temporary folder must outlive the dataset, which reads it lazily; it is removed at exit.
    holder = tempfile.TemporaryDirectory(prefix="classifier-view-")
    _KEEP_ALIVE.append(holder)
    source = _view_of_good_files(good, rotated, holder.name, image_size)
    dataset = keras.utils.image_dataset_from_directory(
        source, labels="inferred", label_mode="binary", class_names=class_names,
        image_size=(image_size, image_size), interpolation=INTERPOLATION,
        batch_size=None, shuffle=False, verbose=False)
    # Cache the decoded, resized images as uint8 (4x smaller than float32): later epochs skip decoding.
    dataset = dataset.map(lambda image, label: (tf.cast(tf.round(image), tf.uint8), label),
                          num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(lambda image, label: (tf.cast(image, tf.float32), label))
    return dataset.prefetch(tf.data.AUTOTUNE), count, bad_count


_KEEP_ALIVE = []
