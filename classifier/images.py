"""Finding photos and reading them: the one reader that training and prediction share.

Every photo is first checked (check_photo, on a thread pool: Pillow decodes outside the GIL), from
one read of its bytes, a file's or an upload's: a broken file is named in one line instead of
stopping an epoch, and the check gives its size, a hash of its bytes (check.py) and how the model's
reader decodes it: TensorFlow's decoder where it reads the file as it is, else Pillow, which turns
EXIF-rotated phone photos upright, reads formats TensorFlow does not, and shrinks big JPEGs while
decoding. Either way the pixels then get the same area resize (data.read_and_resize), in training
and in prediction, so a photo is seen the same way by both.
"""
import errno
import functools
import hashlib
import io
import os
import stat
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

from .config import IMAGE_EXTENSIONS

# Formats TensorFlow's decoder reads as they are; MPO is a JPEG with extra frames (many phone and
# 3D cameras write it), of which TensorFlow reads the first.
TENSORFLOW_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "BMP"}
EXIF_ORIENTATION = 0x0112
JPEG_MAGIC = b"\xff\xd8\xff"  # what tf.io.is_jpeg looks for
# Pixel limits against decompression bombs (a small file that claims billions of pixels). JPEGs are
# decoded shrunk (draft mode), so a 200-megapixel phone photo is fine; other formats decode whole.
JPEG_MAX_PIXELS = 250_000_000
OTHER_MAX_PIXELS = 90_000_000   # Pillow's own default limit
# predict.py keeps the pixels its check decoded up to this size (a 12 MP JPEG, decoded at 1/8: 0.6 MB),
# so a chunk of photos waiting for the model stays small; a bigger picture is decoded again.
KEPT_PIXELS_BYTES = 2 * 2**20
# Paths named like photos that are not files. Opening them could block (a FIFO waits for a writer
# forever; so can a serial device) or never end (/dev/zero), so they are refused before open().
NOT_FILES = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def configure_pillow(max_pixels=JPEG_MAX_PIXELS):
    """Pillow's settings for reading photos, for the whole process: the scripts call it first thing
    (serve.py with its --max-megapixels), and so does the tests' conftest. It raises Pillow's
    decompression-bomb limit to max_pixels (JPEGs are decoded shrunk, so a 200-megapixel phone
    photo is fine; open_image checks other formats against OTHER_MAX_PIXELS itself) and registers
    the phone formats' plugins. Calling it again can only raise the limit."""
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels)
    _register_phone_formats()


@functools.cache
def _register_phone_formats():
    """Teach Pillow the photo formats of phones: HEIC/HEIF (iPhones' default) through the pillow-heif
    plugin, and AVIF through Pillow's own plugin (Pillow 11.2+), else pillow-heif's where its version
    has one. Once per process."""
    try:
        import pillow_heif
    except ImportError:  # HEIC photos are then named as unreadable, with the fix (_unrecognised)
        return
    pillow_heif.register_heif_opener()
    pillow_avif = "avif" in features.modules and features.check_module("avif")
    if not pillow_avif and hasattr(pillow_heif, "register_avif_opener"):
        pillow_heif.register_avif_opener()


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
    does; a file named explicitly is always returned, so a bad one gets reported (so is a FIFO,
    a socket, a device or a broken link: open_image says what it is). A folder named like a photo
    (x.jpg/) is a folder: walked.
    """
    images, missing = [], []
    for path in map(Path, paths):
        if path.is_dir():
            images.extend(_walk(path))
        elif os.path.lexists(path):
            images.append(path)
        else:
            missing.append(path)
    return images, missing


def _walk(folder):
    seen = set()  # real folders already walked: a symlink loop must not walk forever
    for root, dirs, files in os.walk(folder, followlinks=True, onerror=_warn_unreadable_folder):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(files):
            if is_image_name(name):
                yield Path(root, name)


def _warn_unreadable_folder(error):
    """os.walk's onerror: a folder that cannot be listed is named, and the walk goes on without it."""
    print(f"warning: cannot read the folder {error.filename} ({error.strerror}); its photos are left out", file=sys.stderr)


def open_file(path):
    """Open a regular file for binary reading; raise BadImage for anything else named like a photo.

    The type is checked before opening (NOT_FILES), and again on the open file in case one was
    swapped in meanwhile: O_NONBLOCK makes even a FIFO open at once instead of waiting for a writer.
    """
    _refuse_not_a_file(path, os.stat(path).st_mode)
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        _refuse_not_a_file(path, os.fstat(descriptor).st_mode)
    except BadImage:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _refuse_not_a_file(path, mode):
    for is_kind, kind in NOT_FILES:
        if is_kind(mode):
            raise BadImage(path, f"{kind}, not a photo file")


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


def read_bytes(source, name=None):
    """A photo's bytes, read once: source itself when it is bytes (an upload), else the whole file
    (open_file refuses what is not a regular file). Raises BadImage naming the file (or name)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    name = name_of(source, name)
    try:
        with open_file(source) as file:
            return file.read()
    except FileNotFoundError:
        raise BadImage(name, "file not found (a broken link?)")
    except PermissionError:
        raise BadImage(name, "permission denied: make the file readable")
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise BadImage(name, "a loop of symbolic links that never reaches a file")
        raise BadImage(name, f"damaged or incomplete image ({error})")


def decode(data, draft_size=None, name="photo"):
    """Fully decode a photo's bytes with Pillow; every failure becomes a BadImage naming the file.

    draft_size lets the JPEG decoder shrink by 2, 4 or 8 while decoding (never below that size),
    which makes a 12-megapixel phone photo several times cheaper to read.
    """
    if not data:
        raise BadImage(name, "empty file (0 bytes)")
    try:
        with _pillow_warnings():
            image = Image.open(io.BytesIO(data))
            full_size = image.size
            if image.format not in ("JPEG", "MPO") and full_size[0] * full_size[1] > OTHER_MAX_PIXELS:
                raise Image.DecompressionBombError(f"{full_size[0]}x{full_size[1]} pixels")
            if draft_size:
                image.draft("RGB", (draft_size, draft_size))
            image.load()
        image.info["drafted"] = image.size != full_size
        image.info["full_size"] = full_size  # as stored, before draft(): what check.py calls tiny
        return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        size = str(error) if str(error).endswith(" pixels") else f"over {JPEG_MAX_PIXELS // 10**6} megapixels"
        raise BadImage(name, f"too many pixels ({size}), refused as a possible decompression bomb; shrink it to use it")
    except UnidentifiedImageError:  # its own text would name a BytesIO
        raise BadImage(name, _unrecognised(name))
    except OSError as error:
        raise BadImage(name, f"damaged or incomplete image ({error})")
    except Exception as error:  # Pillow raises assorted errors on hostile bytes
        raise BadImage(name, f"damaged image ({type(error).__name__}: {error})")


def name_of(source, name=None):
    """What a BadImage calls a photo: name if given, else its path (bytes: "photo")."""
    return name if name is not None else "photo" if isinstance(source, (bytes, bytearray, memoryview)) else source


def open_image(source, draft_size=None, name=None):
    """A photo (a path, or bytes) opened and fully decoded with Pillow: read_bytes, then decode."""
    name = name_of(source, name)
    return decode(read_bytes(source, name), draft_size, name)


def _unrecognised(name):
    if str(name).lower().endswith((".heic", ".heif")) and "HEIF" not in Image.ID:  # no plugin registered
        return "a HEIC/HEIF photo, which Pillow reads with the pillow-heif package: pip install pillow-heif"
    return "not an image (Pillow does not recognise the contents); save it as JPEG or PNG"


@dataclass(frozen=True)
class CheckedPhoto:
    """What one read of a photo's bytes tells (check_photo): all that training, predict.py and
    serve.py need to know before the model sees it, so that no step reads the file again."""
    size: tuple      # (width, height) as stored; check.py calls a small one tiny
    pillow: bool     # Pillow, not TensorFlow, decodes it for the model (data.read_and_resize)
    sha1: str        # of its bytes: exact copies (check.py)
    pixels: object = field(default=None, compare=False, repr=False)  # uint8 (H, W, 3) the check decoded, if kept


def check_photo(source, image_size, keep_pixels=False, name=None):
    """Check that a photo can be read, from one read of its bytes (a path's, or the bytes given).

    Raises BadImage for a file that cannot be used, naming it (or name, for bytes). Pillow decodes
    it (a big JPEG shrunk to no less than image_size), and is the decoder the model's reader needs
    for: photos with an EXIF rotation (TensorFlow ignores EXIF), big JPEGs (decoded shrunk),
    formats or variants TensorFlow does not read (such as 1-, 4- or 8-bit BMP), 16-bit images, and
    damaged files only Pillow reads. Otherwise TensorFlow decodes it, once, here, to be sure it can.
    keep_pixels: keep the pixels that decode gave (the model's decoder's, exactly), so that
    predict.py and serve.py decode each photo once; not for pictures over KEPT_PIXELS_BYTES.
    """
    name = name_of(source, name)
    data = read_bytes(source, name)
    image = decode(data, image_size, name)
    pillow, pixels = _decoder(image, data)
    if not keep_pixels or image.size[0] * image.size[1] * 3 > KEPT_PIXELS_BYTES:
        pixels = None
    else:
        pixels = rgb_pixels(image) if pillow else pixels.numpy()
    return CheckedPhoto(image.info["full_size"], pillow, hashlib.sha1(data).hexdigest(), pixels)


def _decoder(image, data):
    """(whether Pillow must decode it, TensorFlow's pixels when TensorFlow decodes it)."""
    if image.info["drafted"] or image.format not in TENSORFLOW_FORMATS or _orientation(image) != 1:
        return True, None
    if image.mode.startswith("I"):
        return True, None
    # TensorFlow reads a BMP's bit depth at byte 28 and decodes only 24/32-bit colour.
    if image.format == "BMP" and int.from_bytes(data[28:30], "little") not in (24, 32):
        return True, None
    pixels = _tensorflow_pixels(data)
    return pixels is None, pixels


def _tensorflow_pixels(data):
    """TensorFlow's pixels of these bytes, decoded as the model's reader decodes them; None where it
    refuses them. It refuses some damaged files that Pillow reads (a GIF with a bad record, a BMP
    of the wrong length, some cut JPEGs and PNGs: tests/test_fuzz.py found them), and a refusal
    inside tf.data stops the whole epoch, or predict.py, with a traceback instead of naming one
    file; so those few go to Pillow."""
    from . import import_tensorflow

    tf = import_tensorflow()
    try:
        return tensorflow_decode(data)
    except tf.errors.OpError:
        return None


def tensorflow_decode(data):
    """TensorFlow's decode of a photo's bytes (bytes, or a string tensor in tf.data: data.read_and_resize)
    to uint8 RGB. JPEGs with the accurate integer DCT, as Pillow decodes them (TensorFlow's default
    is the fast one, up to 3 levels off): the same pixels as predict.py's LiteRT path (compiled.read_for_model)."""
    from . import import_tensorflow

    tf = import_tensorflow()

    def jpeg():
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")

    def other():
        return tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)

    if isinstance(data, bytes):  # eager, from Python (the check, load_image): tf.io.is_jpeg's test without its op
        return jpeg() if data.startswith(JPEG_MAGIC) else other()
    return tf.cond(tf.io.is_jpeg(data), jpeg, other)


def check_images(paths, image_size, keep_pixels=False):
    """check_photo for every path, on a thread pool. Yields (path, CheckedPhoto or the BadImage), in order."""
    def check(path):
        try:
            return check_photo(path, image_size, keep_pixels)
        except BadImage as bad:
            return bad

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        yield from zip(paths, pool.map(check, paths))


def pillow_pixels(source, image_size, name=None):
    """8-bit RGB pixels as Pillow reads them (from a path or bytes): upright, JPEGs shrunk while
    decoding (never below image_size), palettes through RGBA, 16-bit greys scaled to 8 bits instead of clipped."""
    return rgb_pixels(open_image(source, draft_size=image_size, name=name))


def rgb_pixels(image):
    """An opened image (open_image) as pillow_pixels gives it; check.py hashes these pixels."""
    if _orientation(image) != 1:
        with _pillow_warnings():
            image = ImageOps.exif_transpose(image)
    if image.mode == "P":  # via RGBA, as Pillow asks for palettes with transparency (else it warns)
        image = image.convert("RGBA")
    if image.mode.startswith("I;16") or image.mode == "I":
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
