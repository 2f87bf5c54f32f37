"""Random and mangled bytes through the whole predict path (the check, the tf.data decode, the
model): each file is a Prediction or one BadImage line, predict.py exits 0 or 1, never a hang, a
traceback or a stray warning. Bounded: a few hundred examples, well under 30 s."""
import io
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from classifier import artifacts
from classifier.config import counted
from classifier.images import BadImage
from classifier.prediction import Prediction, load_classifier, predict_files

SIZE = 16
CLASSES = ["Cats", "Dogs"]
# The same examples on every run (derandomize), and no shrinking: a failure is reported at once, as found.
BOUNDED = settings(deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def encoded(mode, format, size=(24, 16), **options):
    pixels = np.random.default_rng(len(mode) + len(format)).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=format, **options)
    return buffer.getvalue()


def rotated_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded("RGB", "JPEG", exif=exif)


# Real files to mangle: what a photo folder holds, phones' formats included.
SEEDS = [encoded("RGB", "JPEG"), encoded("L", "JPEG"), encoded("CMYK", "JPEG"), encoded("RGB", "JPEG", progressive=True),
         rotated_jpeg(), encoded("RGB", "PNG"), encoded("RGBA", "PNG"), encoded("P", "PNG"), encoded("RGB", "GIF"),
         encoded("RGB", "BMP"), encoded("RGB", "WEBP"), encoded("RGB", "AVIF"), encoded("RGB", "HEIF")]


@st.composite
def mangled(draw):
    """A real image with a few bytes flipped, inserted or deleted, or cut short."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        if edit == "set":
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


FILES = st.one_of(st.binary(max_size=2048), mangled())
NAMES = st.sampled_from(["photo.jpg", "photo.png", "photo.heic", "photo.avif", "photo.webp", "photo.gif", "photo.bmp"])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained logistic model, saved as train_CNN.py saves one: its labels do not matter here."""
    from classifier.model import make_model

    folder = tmp_path_factory.mktemp("model")
    info = artifacts.ModelInfo(CLASSES, SIZE, model="logistic")
    artifacts.save(make_model("logistic", SIZE, len(CLASSES)), info, folder / "model.h5", folder / "weights.h5")
    return folder / "model.h5"


@pytest.fixture(scope="module")
def classifier(model_file):
    return load_classifier(model_file)


def assert_prediction_or_one_line(result, path):
    if isinstance(result, BadImage):
        message = str(result)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
    else:
        assert isinstance(result, Prediction) and result.path == path
        assert result.probabilities.shape == (len(CLASSES),) and math.isclose(result.probabilities.sum(), 1, abs_tol=1e-3)


@settings(BOUNDED, max_examples=150)
@given(data=FILES, name=NAMES)
def test_any_bytes_give_a_prediction_or_one_bad_image(tmp_path, classifier, data, name):
    model, info = classifier
    path = tmp_path / name
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        [result] = list(predict_files(model, info, [path], batch_size=4))
    assert [str(warning.message) for warning in caught] == []  # a warning would be a stray line in predict.py's output
    assert_prediction_or_one_line(result, path)


@settings(BOUNDED, max_examples=12)
@given(files=st.lists(FILES, min_size=1, max_size=6))
def test_predict_py_on_a_folder_of_mangled_files_exits_0_or_1(tmp_path_factory, model_file, run, files):
    folder = tmp_path_factory.mktemp("photos")
    for index, data in enumerate(files):
        (folder / f"{index}.jpg").write_bytes(data)
    result = run("predict.py", folder, "--model", model_file, "--csv", folder / "labels.csv", "--batch-size", 2)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith(("Model: ", "Writing "))]  # "Writing model.tflite"
    rows = result.stdout.splitlines()
    assert len(rows) + sum(line.startswith("error: ") for line in errors) == len(files), result.stderr
    assert (result.returncode == 1) == bool(errors)
    assert all(line.startswith(("error: ", f"{counted(len(rows), 'image')} labelled")) for line in errors), errors
    assert (folder / "labels.csv").read_text().count("\n") == len(rows) + 1


def test_the_seeds_themselves_are_labelled(tmp_path, classifier):
    model, info = classifier
    paths = []
    for index, data in enumerate(SEEDS):
        paths.append(tmp_path / f"{index}.img")
        paths[-1].write_bytes(data)
    results = list(predict_files(model, info, paths, batch_size=4))
    assert [type(result) for result in results] == [Prediction] * len(SEEDS), [str(result) for result in results]
