"""Finding image files and reading them with Pillow.

Training streams photos with TensorFlow (see data.py), but every file is first checked here, so a
broken file is named in one warning line instead of stopping an epoch. Prediction reads photos
here too: Pillow turns EXIF-rotated phone photos upright and reads CMYK, 16-bit and palette files.
"""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import import_tensorflow
from .config import IMAGE_EXTENSIONS, INTERPOLATION

# Formats TensorFlow's decoder reads; Pillow reads more, but a training file must pass both.
# MPO is a JPEG with extra frames (many phone and 3D cameras write it); TensorFlow reads the first.
TENSORFLOW_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "BMP"}
EXIF_ORIENTATION = 0x0112


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


@contextmanager
def _pillow_warnings():
    """Pillow warns about damaged metadata (a corrupt EXIF block) and images just over its pixel limit.

    The first would be a stray line in predict.py's output, though the pixels are fine; the second
    is refused as the decompression bomb it may be. (catch_warnings is not thread-safe: at worst a
    warning prints, and Pillow's own error at twice the limit still holds.)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _orientation(image):
    """The EXIF orientation, 1 for upright; a damaged EXIF block counts as upright."""
    try:
        with _pillow_warnings():
            return image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:
        return 1


def _open(path, draft_size=None):
    """Open and fully decode with Pillow; every failure becomes a BadImage naming the file.

    draft_size lets the JPEG decoder shrink by 2, 4 or 8 while decoding (never below that size),
    which makes a 12-megapixel phone photo several times cheaper to read.
    """
    try:
        # Our own file object: Pillow would keep a GIF's or MPO's file open after load() for other frames.
        with _pillow_warnings(), open(path, "rb") as file:
            image = Image.open(file)
            full_size = image.size
            if draft_size:
                image.draft("RGB", (draft_size, draft_size))
            image.load()
        image.info["drafted"] = image.size != full_size
        return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadImage(path, f"too many pixels, refused as a possible decompression bomb ({error}); shrink it to use it")
    except FileNotFoundError:
        raise BadImage(path, "file not found (a broken link?)")
    except PermissionError:
        raise BadImage(path, "permission denied: make the file readable")
    except OSError as error:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise BadImage(path, "empty file (0 bytes)")
        if isinstance(error, UnidentifiedImageError):  # its own text repeats the path
            raise BadImage(path, "not an image (Pillow does not recognise the contents); save it as JPEG or PNG")
        raise BadImage(path, f"damaged or incomplete image ({error})")
    except Exception as error:  # Pillow raises assorted errors on hostile bytes
        raise BadImage(path, f"damaged image ({type(error).__name__}: {error})")


def check_training_image(path):
    """Raise BadImage unless both Pillow and TensorFlow's decoder can read the file.

    Returns True when the photo carries an EXIF rotation, which TensorFlow's decoder ignores:
    the caller must hand TensorFlow an upright copy (see data.py). CMYK JPEGs, 16-bit, palette
    and greyscale PNGs need nothing: TensorFlow decodes them to RGB as Pillow does.
    """
    image = _open(path)
    if image.format not in TENSORFLOW_FORMATS:
        raise BadImage(path, f"{image.format} data in a {Path(path).suffix} file; save it as JPEG or PNG")
    if image.format == "BMP":
        # TensorFlow reads the bit depth at byte 28 and decodes only 24/32-bit colour (8-bit as grey).
        with open(path, "rb") as file:
            bits = int.from_bytes(file.read(30)[28:30], "little")
        if bits not in (24, 32):
            raise BadImage(path, f"{bits}-bit BMP, which TensorFlow cannot decode in colour; save it as PNG")
    return _orientation(image) in range(2, 9)


def check_training_images(paths):
    """check_training_image on every path, on a thread pool (Pillow decodes outside the GIL).

    Yields (path, result) in order: result is the BadImage, or whether the photo has an EXIF rotation.
    """
    def check(path):
        try:
            return check_training_image(path)
        except BadImage as bad:
            return bad

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        yield from zip(paths, pool.map(check, paths))


def save_upright(path, target, image_size):
    """Save a photo with an EXIF rotation upright as PNG, for TensorFlow's decoder, which ignores EXIF.

    It is read as load_image reads it (JPEG draft, never below image_size), so a training photo
    is shrunk the way predict.py shrinks one; PNG adds no second lossy pass.
    """
    with _pillow_warnings():
        image = ImageOps.exif_transpose(_open(path, draft_size=image_size))
    if image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):  # what PNG holds; CMYK is not
        image = image.convert("RGB")
    image.save(target, format="PNG")


def load_image(path, image_size):
    """Read a photo as the model sees it: upright, RGB, image_size x image_size, uint8.

    The pixels come from the TensorFlow ops that image_dataset_from_directory applies in training
    (tf.io.decode_image, then an area resize): with Pillow's decoder and BOX filter instead, the
    shipped model lost 0.85 points of Test_Set accuracy. Pillow still checks the file first, turns
    EXIF-rotated photos upright, reads what TensorFlow cannot, and shrinks big JPEGs while
    decoding; such photos reach the area resize as Pillow decoded them.
    """
    image = _open(path, draft_size=image_size)
    tf = import_tensorflow()
    try:
        pixels = None
        if _orientation(image) == 1 and not image.info["drafted"]:
            try:
                pixels = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
            except Exception:  # a format or variant TensorFlow does not read (e.g. a 1-bit BMP): Pillow's pixels
                pixels = None
        if pixels is None:
            pixels = _pillow_rgb(image)
        resized = tf.image.resize(pixels, (image_size, image_size), method=INTERPOLATION)
        return np.asarray(tf.cast(tf.round(resized), tf.uint8))
    except Exception as error:
        raise BadImage(path, f"could not convert the image ({type(error).__name__}: {error})")


def _pillow_rgb(image):
    """8-bit RGB pixels of a Pillow image: upright, palettes and 16-bit greys converted as TensorFlow does."""
    if _orientation(image) != 1:
        with _pillow_warnings():
            image = ImageOps.exif_transpose(image)
    if image.mode == "P":  # via RGBA, as Pillow asks for palettes with transparency (else it warns)
        image = image.convert("RGBA")
    if image.mode.startswith("I;16"):
        # 16-bit greyscale: scale to 8 bits instead of clipping every value above 255.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
