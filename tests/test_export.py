"""train_CNN.py --export: each format, reloaded, predicts what model.h5 predicts."""
import json

import numpy as np
import pytest

from conftest import COLOURS, make_photo, run_script

from classifier import artifacts, import_tensorflow
from classifier.images import load_image

tf = import_tensorflow()
import keras  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory, trained):
    """A few generated photos as the model sees them, and model.h5's probabilities for them."""
    output, _ = trained
    model, metadata = artifacts.load(output / "model.h5")
    folder = tmp_path_factory.mktemp("export_photos")
    paths = [make_photo(folder / f"{index}.jpg", colour, size=(70, 50), seed=index)
             for index, colour in enumerate([*COLOURS.values(), (128, 128, 128), (250, 250, 250)])]
    images = np.stack([load_image(path, metadata["image_size"]) for path in paths]).astype("float32")
    return images, model.predict(images, verbose=0)


def export(trained, tmp_path, fmt, *extra):
    output, _ = trained
    result = run_script("train_CNN.py", "--export", fmt, "--model-file", output / "model.h5", "--output", tmp_path, *extra)
    assert result.returncode == 0, result.stderr
    metadata = json.loads((tmp_path / "model_metadata.json").read_text())
    assert metadata["class_names"] == ["Cats", "Dogs"] and metadata["image_size"] == 32
    return result


def test_keras_format(tmp_path, trained, photos):
    images, expected = photos
    export(trained, tmp_path, "keras")
    model = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-4)


def test_savedmodel(tmp_path, trained, photos):
    images, expected = photos
    export(trained, tmp_path, "savedmodel")
    served = tf.saved_model.load(str(tmp_path / "model_savedmodel"))
    # The augmentation layers must be off: model.export() alone would flip and zoom each photo.
    np.testing.assert_allclose(served.serve(tf.constant(images)).numpy(), expected, atol=1e-4)


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")  # LiteRT reads the same file
def test_tflite(tmp_path, trained, photos):
    images, expected = photos
    export(trained, tmp_path, "tflite")
    interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "model.tflite"))
    runner = interpreter.get_signature_runner()
    result = runner(images=images)
    np.testing.assert_allclose(next(iter(result.values())), expected, atol=1e-4)


def test_refuses_to_replace_an_export_without_overwrite(tmp_path, trained):
    output, _ = trained
    (tmp_path / "model.tflite").write_bytes(b"an earlier export")
    result = run_script("train_CNN.py", "--export", "tflite", "--model-file", output / "model.h5", "--output", tmp_path)
    assert result.returncode == 2 and "--overwrite" in result.stderr and result.stderr.count("\n") == 1
    assert (tmp_path / "model.tflite").read_bytes() == b"an earlier export"
    result = run_script("train_CNN.py", "--export", "keras", "--model-file", tmp_path / "nope.h5", "--output", tmp_path)
    assert result.returncode == 2 and "nope.h5 not found" in result.stderr
