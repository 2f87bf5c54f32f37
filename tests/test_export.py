"""train_CNN.py --export: each format, reloaded, gives what model.h5 gives: (N, classes) probabilities,
from the model file named by --model and the weights beside it."""
import json
import shutil
from dataclasses import fields

import numpy as np
import onnxruntime
import pytest

from conftest import THREE_COLOURS, make_photo

from classifier import artifacts, import_tensorflow
from classifier.artifacts import ModelInfo
from classifier.config import RunConfig
from classifier.data import load_image
from classifier.model import make_model

tf = import_tensorflow()
import keras  # noqa: E402

CLASSES = ["Ants", "Bees", "Wasps"]  # not the shipped model's classes, so an export of the wrong model shows
SIZE = 32


def save_run(folder, seed, class_names=CLASSES, arch="classic"):
    """model.h5 and weights.h5 as a training run leaves them (float16 weights), with random weights of its own."""
    keras.utils.set_random_seed(seed)
    model = make_model(arch, SIZE, len(class_names))
    info = ModelInfo(list(class_names), SIZE, model=arch, test_accuracy=0.5 + seed / 10, keras_version=keras.__version__,
                     weights_dtype="float16", run=RunConfig(arch=arch, image_size=SIZE, seed=seed).to_dict())
    folder.mkdir(parents=True, exist_ok=True)
    artifacts.save(model, info, folder / "model.h5", folder / "weights.h5")
    return folder / "model.h5"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """RUN/model.h5 whose weights.h5 beside it holds other weights than model.h5 itself: the export must use
    weights.h5's. Returns (RUN/model.h5, photos as the model sees them, its probabilities for them)."""
    root = tmp_path_factory.mktemp("export")
    model_path = save_run(root / "run", seed=0)
    inner, _ = artifacts.load(model_path, weights_path=model_path)
    shutil.copy(save_run(root / "other", seed=1).with_name("weights.h5"), root / "run" / "weights.h5")
    model, info = artifacts.load(model_path)
    assert info.class_names == CLASSES
    paths = [make_photo(root / "photos" / f"{index}.jpg", colour, size=(70, 50), seed=index)
             for index, colour in enumerate([*THREE_COLOURS.values(), (128, 128, 128), (250, 250, 250)])]
    images = np.stack([load_image(path, SIZE) for path in paths]).astype("float32")
    expected = model.predict_on_batch(images)
    assert expected.shape == (len(paths), 3) and np.allclose(expected.sum(axis=1), 1, atol=1e-5)
    assert np.abs(expected - inner.predict_on_batch(images)).max() > 1e-3  # the two sets of weights tell apart
    return model_path, images, expected


def export(run, model_path, fmt, output, *extra):
    result = run("train_CNN.py", "--export", fmt, "--model", model_path, "--output", output, *extra)
    assert result.returncode == 0, result.stderr
    assert f"Exporting {model_path} (weights: {model_path.with_name('weights.h5')})" in result.stdout
    metadata = json.loads((output / "model_metadata.json").read_text())
    assert set(metadata) == {field.name for field in fields(ModelInfo)} - {"bank"} | {"input", "output"}
    assert ModelInfo(**{key: metadata[key] for key in metadata if key not in ("input", "output")}) == ModelInfo.read(model_path)
    assert metadata["class_names"] == CLASSES and metadata["image_size"] == SIZE and metadata["run"]["seed"] == 0
    assert metadata["output"] == "(N, 3): probability of each class, in the order Ants, Bees, Wasps"
    return result


def run_exported(fmt, output, images):
    """The exported file's outputs for the images, read back as a user of that format would."""
    if fmt == "keras":
        return keras.models.load_model(output / "model.keras").predict_on_batch(images)
    if fmt == "savedmodel":
        # The augmentation layers must be off: model.export() alone would flip and zoom each photo.
        served = tf.saved_model.load(str(output / "model_savedmodel"))  # kept: its variables go with it
        return served.serve(tf.constant(images)).numpy()
    if fmt == "onnx":
        return onnxruntime.InferenceSession(str(output / "model.onnx")).run(None, {"images": images})[0]
    from ai_edge_litert.interpreter import Interpreter
    return Interpreter(model_path=str(output / "model.tflite")).get_signature_runner()(images=images)["output_0"]


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_each_format_gives_the_probabilities_of_model_h5(tmp_path, run, run_folder, fmt):
    model_path, images, expected = run_folder
    export(run, model_path, fmt, tmp_path)
    outputs = run_exported(fmt, tmp_path, images)
    assert outputs.shape == (len(images), 3)
    np.testing.assert_allclose(outputs, expected, atol=1e-4)


def test_the_savedmodel_takes_the_instances_body_of_tf_servings_rest_api(tmp_path, run, run_folder):
    """TF Serving runs the `serving_default` signature; its REST API (POST /v1/models/NAME:predict) turns
    {"instances": [photo, ...]}, each photo size x size x 3 values 0-255, into that signature's one input."""
    model_path, images, expected = run_folder
    export(run, model_path, "savedmodel", tmp_path)
    signature = tf.saved_model.load(str(tmp_path / "model_savedmodel")).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert list(inputs) == ["images"] and inputs["images"].dtype == tf.float32
    assert inputs["images"].shape.as_list() == [None, SIZE, SIZE, 3]
    body = json.loads(json.dumps({"instances": images.astype(int).tolist()}))  # what `curl -d @body.json` sends
    (outputs,) = signature(images=tf.constant(body["instances"], tf.float32)).values()  # one output: the answer's "predictions"
    np.testing.assert_allclose(outputs.numpy(), expected, atol=1e-4)


def test_exports_the_model_named_by_model_with_the_weights_beside_it(tmp_path, run, run_folder):
    """RUN's model (its class names, and the predictions of RUN/weights.h5), not the shipped model.h5 or its weights."""
    model_path, images, expected = run_folder
    result = export(run, model_path, "keras", tmp_path / "out")
    assert "class names Ants, Bees, Wasps, 32x32 px" in result.stdout
    outputs = run_exported("keras", tmp_path / "out", images)
    assert outputs.shape == (len(images), 3)
    np.testing.assert_allclose(outputs, expected, atol=1e-4)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["model.keras", "model_metadata.json"]


def test_without_output_the_export_goes_beside_the_model_file(tmp_path, run, run_folder):
    model_path, images, expected = run_folder
    run_dir = tmp_path / "run"
    shutil.copytree(model_path.parent, run_dir)
    result = run("train_CNN.py", "--export", "keras", "--model", run_dir / "model.h5")
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "model_metadata.json").read_text())["class_names"] == CLASSES
    np.testing.assert_allclose(run_exported("keras", run_dir, images), expected, atol=1e-4)


def test_refuses_to_replace_an_export_without_overwrite(tmp_path, run, run_folder):
    model_path, images, expected = run_folder
    (tmp_path / "model.keras").write_bytes(b"an earlier export")
    result = run("train_CNN.py", "--export", "keras", "--model", model_path, "--output", tmp_path)
    assert result.returncode == 2 and "--overwrite" in result.stderr and result.stderr.count("\n") == 1
    assert (tmp_path / "model.keras").read_bytes() == b"an earlier export"
    export(run, model_path, "keras", tmp_path, "--overwrite")
    np.testing.assert_allclose(run_exported("keras", tmp_path, images), expected, atol=1e-4)


def test_a_missing_model_file_is_one_clear_error(tmp_path, run):
    result = run("train_CNN.py", "--export", "keras", "--model", tmp_path / "nope.h5", "--output", tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "nope.h5 not found" in result.stderr
    assert list(tmp_path.iterdir()) == []
    result = run("train_CNN.py", "--export", "keras", "--model", "cnn")  # the old meaning of --model
    assert result.returncode == 2 and "use --arch cnn" in result.stderr
