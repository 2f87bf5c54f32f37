"""Finding image files and reading them with Pillow.

Training streams photos with TensorFlow (see data.py), but every file is first checked here, so a
broken file is named in one warning line instead of stopping an epoch. Prediction reads photos
here too: Pillow turns EXIF-rotated phone photos upright and reads CMYK, 16-bit and palette files.
"""
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .config import IMAGE_EXTENSIONS

# Formats TensorFlow's decoder reads; Pillow reads more, but a training file must pass both.
TENSORFLOW_FORMATS = {"JPEG", "PNG", "GIF", "BMP"}


class BadImage(Exception):
    """A file that cannot be used as an image; str() names the file and the reason."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def is_image_name(path):
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def find_images(paths):
    """Expand files and folders (walked recursively, sorted) into image files.

    Returns (images, missing): missing lists the given paths that do not exist. Files in folders
    whose names are not image names (.txt, .DS_Store, Thumbs.db) are skipped silently, as Keras
    does; a file named explicitly is always returned, so a bad one gets reported.
    """
    images, missing = [], []
    for path in map(Path, paths):
        if path.is_dir():
            images.extend(_walk(path))
        elif path.is_file() or path.is_symlink():
            images.append(path)
        else:
            missing.append(path)
    return images, missing


def _walk(folder):
    seen = set()  # real folders already walked: a symlink loop must not walk forever
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(files):
            if is_image_name(name):
                yield Path(root, name)


def _open(path, draft_size=None):
    """Open and fully decode with Pillow; every failure becomes a BadImage naming the file.

    draft_size lets the JPEG decoder shrink by 2, 4 or 8 while decoding (never below that size),
    which makes a 12-megapixel phone photo several times cheaper to read.
    """
    try:
        with warnings.catch_warnings():
            # Pillow only warns for images just over its pixel limit; treat them as bombs too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            if draft_size:
                image.draft("RGB", (draft_size, draft_size))
            image.load()
        return image
    except Image.DecompressionBombError as error:
        raise BadImage(path, f"too many pixels, refused as a possible decompression bomb ({error})")
    except Image.DecompressionBombWarning:
        raise BadImage(path, "too many pixels, refused as a possible decompression bomb")
    except FileNotFoundError:
        raise BadImage(path, "file not found (a broken link?)")
    except OSError as error:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise BadImage(path, "empty file (0 bytes)")
        raise BadImage(path, f"not a readable image ({error})")
    except Exception as error:  # Pillow raises assorted errors on hostile bytes
        raise BadImage(path, f"not a readable image ({type(error).__name__}: {error})")


def check_training_image(path):
    """Raise BadImage unless both Pillow and TensorFlow's decoder can read the file."""
    image = _open(path)
    if image.format not in TENSORFLOW_FORMATS:
        raise BadImage(path, f"{image.format} data in a {Path(path).suffix} file; save it as JPEG or PNG")
    if image.mode == "CMYK":
        raise BadImage(path, "CMYK JPEG, which TensorFlow cannot decode; save it as RGB")


def load_image(path, image_size):
    """Read a photo as the model sees it: upright, RGB, image_size x image_size, uint8."""
    image = _open(path, draft_size=image_size)
    try:
        image = ImageOps.exif_transpose(image)
        if image.mode.startswith("I;16"):
            # 16-bit greyscale: scale to 8 bits instead of clipping every value above 255.
            image = image.convert("I").point(lambda value: value / 256).convert("L")
        image = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BOX)
        return np.asarray(image, dtype=np.uint8)
    except Exception as error:
        raise BadImage(path, f"could not convert the image ({type(error).__name__}: {error})")
