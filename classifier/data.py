"""The input pipeline: checked lists of (path, label) samples become tf.data streams of image batches.

Keras 3 removed ImageDataGenerator. Here, as in keras.io's examples, tf.data reads, decodes and
resizes in parallel; augmentation and pixel scaling are layers of the model (model.py). Training,
evaluation, predict.py and serve.py decode photos the same way (images.check_photo's choice of decoder)
and resize them with one function (resize), so they see the same pixels.
"""
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import import_tensorflow
from .config import DATASET_DIR, INTERPOLATION, TEST_DIR, TRAIN_DIR, UsageError, short_path
from .images import BadImage, CheckedPhoto, check_images, check_photo, find_images, pillow_pixels, tensorflow_decode


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int                  # index into the class names
    photo: CheckedPhoto = None  # what the photo check found (images.check_photo); None: not checked, TensorFlow decodes it

    @property
    def pillow(self):
        """Decoded by Pillow, not TensorFlow."""
        return self.photo is not None and self.photo.pillow

    @property
    def pixels(self):
        """The pixels the check decoded and kept, else None."""
        return None if self.photo is None else self.photo.pixels


def class_folders(split_dir):
    """The class sub-folders of a split, sorted: their order fixes the labels (0, 1, 2...). The one
    listing of class folders (training, --evaluate, Keras 2 class names, predict.py's hint); none
    for a folder that is not there."""
    if not os.path.isdir(split_dir):
        return []
    return sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir() and not entry.name.startswith("."))


def check_layout(data_dir):
    """Check DATA/Training_Set and DATA/Test_Set hold the same class folders (two or more); return their names."""
    data_dir = Path(data_dir)
    names = {}
    for split in (TRAIN_DIR, TEST_DIR):
        split_dir = data_dir / split
        if not split_dir.is_dir():
            raise UsageError(f"{split_dir} not found: --data must hold {TRAIN_DIR}/ and {TEST_DIR}/, each with one folder per class")
        names[split] = class_folders(split_dir)
        if len(names[split]) < 2:
            found = ", ".join(names[split]) or "none"
            raise UsageError(f"{split_dir} must hold a folder per class, at least 2 (found {len(names[split])}: {found}); "
                             "make one folder per kind of photo, such as Cats/ and Dogs/")
    if names[TRAIN_DIR] != names[TEST_DIR]:
        raise UsageError(
            f"the class folders differ: {data_dir / TRAIN_DIR} has {', '.join(names[TRAIN_DIR])} but "
            f"{data_dir / TEST_DIR} has {', '.join(names[TEST_DIR])}; give both sets the same class folders")
    for split in (TRAIN_DIR, TEST_DIR):  # by file name only: cheap, and before TensorFlow loads
        for name in names[split]:
            if not find_images([data_dir / split / name])[0]:
                fetch = " (or run python train_CNN.py --download-dataset)" if data_dir.resolve() == DATASET_DIR else ""
                raise UsageError(f"{short_path(data_dir / split / name)} holds no photos: put .jpg or .png photos of {name} there{fetch}")
    return names[TRAIN_DIR]


def labelled_samples(split_dir, class_names, image_size):
    """Check every photo of split_dir/<class>/ once; warn about each unreadable one.

    Returns (samples, number of unreadable files skipped).
    """
    samples, bad_count = [], 0
    for label, name in enumerate(class_names):
        paths, _ = find_images([Path(split_dir, name)])
        good = 0
        for path, result in check_images(paths, image_size):
            if isinstance(result, BadImage):
                bad_count += 1
                print(f"warning: skipping {result}", file=sys.stderr)
                continue
            samples.append(Sample(path, label, result))
            good += 1
        if not good:
            raise UsageError(f"{Path(split_dir, name)} has no readable images: put .jpg or .png photos of {name} there")
    return samples, bad_count


def split_off(samples, fraction, seed):
    """Hold out `fraction` of each class (at least one photo, when there are two or more), chosen
    at random with the seed: (kept, held out). The held-out photos pick the epoch that is kept."""
    if fraction <= 0:
        return samples, []
    kept, held = [], []
    for label in sorted({sample.label for sample in samples}):
        group = [sample for sample in samples if sample.label == label]
        random.Random(f"{seed}-{label}").shuffle(group)
        count = min(len(group) - 1, max(1, round(len(group) * fraction)))
        held += group[:count]
        kept += group[count:]
    return kept, held


def read_and_resize(path, from_python, image_size, kept=None, index=None):
    """One photo as the model sees it: a uint8 (size, size, 3) tensor, area-resized.

    TensorFlow decodes what it reads as is; from_python: the pixels come from Pillow (the decoder
    images.check_photo chose), or from kept[index] when the check kept the pixels it decoded (by
    either decoder). A graph function, so tf.data runs it on many photos at once.
    """
    tf = import_tensorflow()

    def pixels_of(name, position):
        if kept is not None and kept[position] is not None:
            return kept[position]
        return pillow_pixels(os.fsdecode(name), image_size)

    def with_python():  # Pillow's decode, or the pixels kept
        pixels = tf.numpy_function(pixels_of, [path, -1 if index is None else index], tf.uint8, stateful=False)
        return tf.ensure_shape(pixels, (None, None, 3))

    return resize(tf.cond(from_python, with_python, lambda: tensorflow_decode(tf.io.read_file(path))), image_size)


def resize(pixels, image_size):
    """uint8 pixels (H, W, 3) area-resized to (image_size, image_size, 3), rounded back to uint8."""
    tf = import_tensorflow()
    resized = tf.image.resize(pixels, (image_size, image_size), method=INTERPOLATION)
    return tf.cast(tf.round(resized), tf.uint8)


def image_dataset(samples, image_size, batch_size, shuffle=False, seed=None, cache=False):
    """A tf.data stream of (float32 images 0-255, integer labels) batches, in the samples' order
    unless shuffled."""
    return batches(decoded_photos(samples, image_size, cache), batch_size, shuffle, seed)


def decoded_photos(samples, image_size, cache=False):
    """A tf.data stream of (uint8 image, label), one per sample, in order. cache=True keeps them in
    memory (uint8: 4x smaller than float32) after the first full pass, for every stream made from
    this one: later epochs, and the scoring for reports/suspects.csv, skip decoding."""
    tf = import_tensorflow()
    paths = [os.fsencode(sample.path) for sample in samples]  # bytes: any file name, even one that is not UTF-8
    kept = [sample.pixels for sample in samples]  # the pixels predict.py's check decoded, so not decoded twice
    from_python = [sample.pillow or pixels is not None for sample, pixels in zip(samples, kept)]
    labels = [sample.label for sample in samples]
    kept = kept if any(pixels is not None for pixels in kept) else None
    dataset = tf.data.Dataset.from_tensor_slices((paths, from_python, labels, np.arange(len(samples))))
    dataset = dataset.map(lambda path, python, label, index: (read_and_resize(path, python, image_size, kept, index), label),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.cache() if cache else dataset


def batches(photos, batch_size, shuffle=False, seed=None):
    """decoded_photos as float32 batches, reshuffled each epoch when shuffle=True."""
    tf = import_tensorflow()
    if shuffle:
        photos = photos.shuffle(int(photos.cardinality()), seed=seed, reshuffle_each_iteration=True)
    photos = photos.batch(batch_size).map(lambda images, labels: (tf.cast(images, tf.float32), labels))
    return photos.prefetch(tf.data.AUTOTUNE)


def load_image(source, image_size, name=None):
    """One photo (a path, or bytes) as a uint8 numpy array, read exactly as training reads it, from
    one read of its bytes. Raises BadImage naming it (or name)."""
    from .images import name_of, read_bytes

    name = name_of(source, name)
    data = read_bytes(source, name)
    photo = check_photo(data, image_size, keep_pixels=True, name=name)
    try:
        pixels = photo.pixels
        if pixels is None:  # too big to keep: decoded again from the bytes in memory
            pixels = pillow_pixels(data, image_size, name) if photo.pillow else tensorflow_decode(data)
        return resize(pixels, image_size).numpy()
    except BadImage:
        raise
    except Exception as error:
        raise BadImage(name, f"could not convert the image ({type(error).__name__}: {str(error).splitlines()[0]})")
