"""model.h5 and weights.h5 that are missing, damaged, mismatched or unsafe: each is one UsageError
naming the file and what to do, which predict.py prints as one line with exit code 2."""
import json
import os

import h5py
import pytest

from classifier import artifacts, import_tensorflow, metadata
from classifier.config import EXIT_USAGE, UsageError
from classifier.model import make_model
from conftest import COLOURS, make_photo

import_tensorflow()
import keras  # noqa: E402

METADATA = {"class_names": ["Cats", "Dogs"], "image_size": 32, "interpolation": "area"}


def info(**changes):
    """The ModelInfo train_CNN.py writes into model.h5, for a Cats/Dogs model at 32 px unless changed."""
    return artifacts.ModelInfo(**dict(METADATA, **changes))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Three trained-looking pairs: cnn and logistic at 32 px, and cnn at 64 px."""
    folder = tmp_path_factory.mktemp("models")
    for kind, size in (("cnn", 32), ("logistic", 32), ("cnn", 64)):
        pair = folder / f"{kind}{size}"
        pair.mkdir()
        artifacts.save(make_model(kind, size, 2), info(model=kind, image_size=size), pair / "model.h5", pair / "weights.h5")
    return folder


def load_error(model_path, weights_path=None):
    with pytest.raises(UsageError) as caught:
        artifacts.load(model_path, weights_path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_matching_pair_loads(saved):
    model, loaded = artifacts.load(saved / "cnn32" / "model.h5", saved / "cnn32" / "weights.h5")
    assert model.name == "cnn" and model.output_shape == (None, 2)
    assert loaded == info(model="cnn", image_size=32)


@pytest.mark.parametrize("missing", ["model.h5", "weights.h5"])
def test_missing_file(saved, tmp_path, missing):
    paths = {"model.h5": saved / "cnn32" / "model.h5", "weights.h5": saved / "cnn32" / "weights.h5", missing: tmp_path / missing}
    message = load_error(paths["model.h5"], paths["weights.h5"])
    assert message.startswith(f"{tmp_path / missing} not found") and "train_CNN.py" in message


@pytest.mark.parametrize("model_from, weights_from", [
    ("cnn32", "logistic32"),   # another architecture
    ("logistic32", "cnn32"),
    ("cnn32", "cnn64"),        # the same one trained at another image size
])
def test_weights_from_another_model(saved, model_from, weights_from):
    message = load_error(saved / model_from / "model.h5", saved / weights_from / "weights.h5")
    assert message.startswith(f"{saved / weights_from / 'weights.h5'} does not fit the model in {saved / model_from / 'model.h5'}")
    assert "mismatch" in message and "use the weights.h5 written with that model.h5" in message


def damage(source, target, how):
    data = source.read_bytes()
    target.write_bytes({"truncated": data[:len(data) // 2], "empty": b"", "text": b"not a model", "png": b"\x89PNG\r\n\x1a\n" + data[8:200]}[how])
    return target


@pytest.mark.parametrize("how", ["truncated", "empty", "text", "png"])
def test_damaged_model_file(saved, tmp_path, how):
    bad = damage(saved / "cnn32" / "model.h5", tmp_path / "model.h5", how)
    message = load_error(bad, saved / "cnn32" / "weights.h5")
    assert message.startswith(f"{bad} is not a readable HDF5 model file")


@pytest.mark.parametrize("how", ["truncated", "empty", "text"])
def test_damaged_weights_file(saved, tmp_path, how):
    bad = damage(saved / "cnn32" / "weights.h5", tmp_path / "weights.h5", how)
    message = load_error(saved / "cnn32" / "model.h5", bad)
    assert message.startswith(f"{bad} is not a readable HDF5 weights file")


def test_a_keras_model_not_written_by_train_cnn(tmp_path):
    make_model("logistic", 32, 2).save(tmp_path / "plain.h5")  # no class names or image size inside
    assert "was not written by train_CNN.py" in load_error(tmp_path / "plain.h5")
    with h5py.File(tmp_path / "plain.h5", "a") as file:
        file.attrs[metadata.METADATA_KEY] = "{not json"
    assert "was not written by train_CNN.py" in load_error(tmp_path / "plain.h5")
    with h5py.File(tmp_path / "plain.h5", "a") as file:
        file.attrs[metadata.METADATA_KEY] = json.dumps(["a", "list"])
    assert "was not written by train_CNN.py" in load_error(tmp_path / "plain.h5")


def test_an_hdf5_file_with_our_metadata_but_no_model(tmp_path):
    with h5py.File(tmp_path / "model.h5", "w") as file:
        file.attrs[metadata.METADATA_KEY] = json.dumps(METADATA)
    message = load_error(tmp_path / "model.h5")
    assert message.startswith(f"{tmp_path / 'model.h5'} could not be loaded") and "train_CNN.py" in message


@pytest.fixture
def lambda_model(tmp_path):
    """A model.h5 with our metadata whose Lambda layer writes a marker file whenever its code runs."""
    marker = tmp_path / "code-ran"
    function = eval(f"lambda x: x + 0.0 * len(__import__('pathlib').Path({str(marker)!r}).write_text('ran'))")
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Lambda(function), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    artifacts.save(model, info(), tmp_path / "model.h5", tmp_path / "weights.h5")
    assert marker.exists()  # building the model ran the code...
    marker.unlink()
    return tmp_path / "model.h5", tmp_path / "weights.h5", marker


def test_a_lambda_layer_is_refused_by_safe_mode_without_running(lambda_model):
    model_path, weights_path, marker = lambda_model
    message = load_error(model_path, weights_path)
    assert message.startswith(f"{model_path} refused by Keras's safe mode") and "Lambda" in message
    assert not marker.exists()
    keras.models.load_model(model_path, compile=False, safe_mode=False)
    assert marker.exists()  # ...and so would loading it with safe mode off


def predict(run, model_path, weights_path, tmp_path):
    photo = make_photo(tmp_path / "photo.jpg", COLOURS["Cats"])
    return run("predict.py", photo, "--model", model_path, "--weights", weights_path)


def test_predict_refuses_a_lambda_model_in_one_line(lambda_model, tmp_path, run):
    model_path, weights_path, marker = lambda_model
    result = predict(run, model_path, weights_path, tmp_path)
    assert result.returncode == EXIT_USAGE and result.stdout == ""
    assert result.stderr.startswith(f"error: {model_path} refused by Keras's safe mode") and result.stderr.count("\n") == 1, result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("case", ["other weights", "truncated weights"])
def test_predict_names_a_bad_weights_file_in_one_line(saved, tmp_path, run, case):
    weights = saved / "logistic32" / "weights.h5"
    if case == "truncated weights":
        weights = damage(saved / "cnn32" / "weights.h5", tmp_path / "weights.h5", "truncated")
    result = predict(run, saved / "cnn32" / "model.h5", weights, tmp_path)
    assert result.returncode == EXIT_USAGE and result.stdout == ""
    assert result.stderr.startswith(f"error: {weights} ") and result.stderr.count("\n") == 1, result.stderr


def test_saved_files_get_the_usual_permissions(saved):
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("model.h5", "weights.h5"):
        assert (saved / "cnn32" / name).stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
