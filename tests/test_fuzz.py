"""Random and mangled bytes: the image readers either return a proper image or raise BadImage,
never another exception, and never a stray warning line."""
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from classifier.images import BadImage, check_training_image, load_image

SIZE = 16


def encoded(mode, format, size=(24, 16), **options):
    pixels = np.random.default_rng(len(mode) + len(format)).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=format, **options)
    return buffer.getvalue()


def rotated_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded("RGB", "JPEG", exif=exif)


# Real files to mangle: what a photo folder holds.
SEEDS = [encoded("RGB", "JPEG"), encoded("L", "JPEG"), encoded("CMYK", "JPEG"), encoded("RGB", "JPEG", progressive=True),
         rotated_jpeg(), encoded("RGB", "PNG"), encoded("RGBA", "PNG"), encoded("P", "PNG"), encoded("RGB", "GIF"),
         encoded("RGB", "BMP")]


@st.composite
def mangled(draw):
    """A real image with a few bytes flipped, inserted or deleted, or cut short."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        if edit == "set":
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif len(data) > 1:
            del data[at:]
        if not data:
            break
    return bytes(data)


def read_both(data):
    """Run both readers on the bytes saved as a file; return what each gave (an array, a bool, or a BadImage)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "photo.jpg")
        path.write_bytes(data)
        results = []
        for read in (lambda: load_image(path, SIZE), lambda: check_training_image(path)):
            try:
                results.append(read())
            except BadImage as bad:
                message = str(bad)
                assert message.startswith(f"{path}: ") and "\n" not in message, message
                results.append(bad)
        return results


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=4096), mangled()))
def test_readers_raise_nothing_but_bad_image(data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image, usable_for_training = read_both(data)
    assert [str(warning.message) for warning in caught] == []  # a warning would be a stray line in predict.py's output
    if not isinstance(image, BadImage):
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert isinstance(usable_for_training, (bool, BadImage))


def test_the_seeds_themselves_are_read():
    for data in SEEDS:
        image, usable_for_training = read_both(data)
        assert isinstance(image, np.ndarray) and isinstance(usable_for_training, bool)
