"""model.tflite, the compiled form of model.h5 (compiled.py): the same answers as Keras without
TensorFlow, used only while fresh, rewritten when stale, and never a second truth."""
import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import COLOURS, PROJECT, make_photo

from classifier import compiled
from classifier.compiled import CompiledModel, area_resize, compiled_path, is_fresh, load_fresh, read_metadata
from classifier.prediction import load_classifier, predict_files

GREEN = (40, 200, 60)


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the shared trained run (model.h5, weights.h5 and the model.tflite training wrote)."""
    output, _ = trained
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("model.h5", "weights.h5", "model.tflite"):
        shutil.copy2(output / name, copy / name)
    return copy


def many_photos(folder, count):
    """count photos of many sizes, shapes and formats: the readers of the two engines must agree on each."""
    paths = []
    colours = [*COLOURS.values(), GREEN]
    for index in range(count):
        size = (20 + (index * 7) % 90, 20 + (index * 13) % 70)
        suffix = (".jpg", ".png", ".bmp", ".webp")[index % 4]
        paths.append(make_photo(folder / f"{index:04d}{suffix}", colours[index % len(colours)], size=size, seed=index))
    return paths


def test_training_writes_a_fresh_model_tflite_with_the_metadata(trained):
    output, _ = trained
    assert is_fresh(output / "model.h5", output / "weights.h5")
    metadata = read_metadata(compiled_path(output / "model.h5"))
    assert metadata["model_info"]["class_names"] == ["Cats", "Dogs"] and metadata["model_info"]["image_size"] == 32
    assert metadata["model_info"]["open_set"]["threshold"] > 0 and "bank" not in metadata["model_info"]


def test_both_engines_give_the_same_labels_and_probabilities_on_a_thousand_photos(trained, tmp_path):
    output, _ = trained
    paths = many_photos(tmp_path, 1000)
    lite, info = load_classifier(output / "model.h5")
    network, keras_info = load_classifier(output / "model.h5", compiled=False)
    assert isinstance(lite, CompiledModel) and not isinstance(network, CompiledModel)
    fast = list(predict_files(lite, info, paths, batch_size=32))
    slow = list(predict_files(network, keras_info, paths, batch_size=32))
    assert [row.label for row in fast] == [row.label for row in slow]
    np.testing.assert_allclose([row.probabilities for row in fast], [row.probabilities for row in slow], atol=1e-4)
    np.testing.assert_allclose([row.unknown_score for row in fast], [row.unknown_score for row in slow], atol=1e-4)
    assert {row.label for row in fast} == {"Cats", "Dogs", "unknown"}  # green photos are neither
    mirrored = [list(predict_files(model, model_info, paths[:50], batch_size=32, tta=True))
                for model, model_info in ((lite, info), (network, keras_info))]  # --tta: each photo and its mirror image
    np.testing.assert_allclose(*([row.probabilities for row in rows] for rows in mirrored), atol=1e-4)
    np.testing.assert_allclose(*([row.unknown_score for row in rows] for rows in mirrored), atol=1e-4)
    assert not np.allclose([row.probabilities for row in mirrored[0]], [row.probabilities for row in fast[:50]], atol=1e-6)


def test_the_area_resize_is_tensorflows(tmp_path):
    from classifier import import_tensorflow

    tf = import_tensorflow()
    rng = np.random.default_rng(0)
    for height, width, size in ((40, 40, 32), (180, 180, 288), (240, 320, 288), (216, 320, 288), (375, 500, 288),
                                (1000, 750, 288), (7, 5, 3), (3, 9, 8)):
        pixels = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        expected = tf.cast(tf.round(tf.image.resize(pixels, (size, size), method="area")), tf.uint8).numpy()
        np.testing.assert_array_equal(area_resize(pixels, size), expected)  # float32 weights, TensorFlow's order of sums


def test_a_stale_model_tflite_is_ignored_then_rewritten(run_copy, run, tmp_path):
    """Edit weights.h5 (as a second training run into the same folder would): the compiled file no
    longer matches, so predict.py runs model.h5 with Keras, and writes a fresh model.tflite for next time."""
    import h5py

    model = run_copy / "model.h5"
    photo = make_photo(tmp_path / "blue.jpg", COLOURS["Cats"])
    assert "run by LiteRT" in run("predict.py", photo, "--model", model).stderr
    with h5py.File(run_copy / "weights.h5", "a") as file:  # other weights: the Dense kernel halved
        kernels = []
        file.visititems(lambda name, item: kernels.append(item) if isinstance(item, h5py.Dataset) and "kernel" in name else None)
        kernels[0][...] = kernels[0][()] / 2
    old = compiled_path(model).read_bytes()
    assert load_fresh(model, run_copy / "weights.h5") == (None, "model.tflite is stale: it was made from another model.h5 or weights.h5")
    stale = run("predict.py", photo, "--model", model)
    assert stale.returncode == 0 and "run by LiteRT" not in stale.stderr and "Writing " in stale.stderr
    assert compiled_path(model).read_bytes() != old and is_fresh(model, run_copy / "weights.h5")
    fresh = run("predict.py", photo, "--model", model)
    assert "run by LiteRT" in fresh.stderr and fresh.stdout.split("\t")[1:] == stale.stdout.split("\t")[1:]


def test_a_damaged_model_tflite_falls_back_to_keras_and_one_that_cannot_be_written_is_said(run_copy, run, tmp_path):
    model = run_copy / "model.h5"
    photo = make_photo(tmp_path / "blue.jpg", COLOURS["Cats"])
    expected = run("predict.py", photo, "--model", model).stdout
    compiled_path(model).write_bytes(compiled_path(model).read_bytes()[:1000])  # cut short
    assert load_fresh(model, run_copy / "weights.h5")[0] is None
    result = run("predict.py", photo, "--model", model)
    assert result.returncode == 0 and result.stdout == expected and is_fresh(model, run_copy / "weights.h5")
    compiled_path(model).unlink()
    compiled_path(model).mkdir()  # a folder in its place: it cannot be written
    blocked = run("predict.py", photo, "--model", model)
    assert blocked.returncode == 0 and blocked.stdout == expected
    assert "note: could not write" in blocked.stderr and "model.tflite" in blocked.stderr


def test_no_compiled_and_heatmaps_run_keras(run_copy, run, tmp_path):
    photo = make_photo(tmp_path / "blue.jpg", COLOURS["Cats"])
    for flags in (("--no-compiled",), ("--heatmaps", tmp_path / "why")):
        result = run("predict.py", photo, "--model", run_copy / "model.h5", *flags)
        assert result.returncode == 0 and "run by LiteRT" not in result.stderr and "Writing " not in result.stderr


def test_predict_py_and_serve_py_with_a_fresh_model_tflite_never_import_tensorflow(run_copy, tmp_path):
    photo = make_photo(tmp_path / "blue.jpg", COLOURS["Cats"])
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import predict; code = predict.main(sys.argv[2:]); "
            "from classifier.prediction import load_classifier; from classifier.server import create_app, warm_up; "
            "model, info = load_classifier(sys.argv[-1]); warm_up(create_app(model, info), info.image_size); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, code)")
    result = subprocess.run([sys.executable, "-c", code, str(PROJECT), str(photo), "--model", str(run_copy / "model.h5")],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines()[-1] == "False False 0", result.stdout + result.stderr
    assert result.stdout.splitlines()[0].split("\t")[1] in ("Cats", "Dogs", "unknown")
    assert "XNNPACK" not in result.stderr  # LiteRT's own start-up line is hidden


def test_serve_runs_the_compiled_model_as_predict_does(run_copy, tmp_path):
    from fastapi.testclient import TestClient

    from classifier.server import create_app

    lite, info = load_classifier(run_copy / "model.h5")
    network, keras_info = load_classifier(run_copy / "model.h5", compiled=False)
    buffer = io.BytesIO()
    Image.open(make_photo(tmp_path / "orange.jpg", COLOURS["Dogs"], size=(90, 60))).save(buffer, "JPEG")
    answers = []
    for model, model_info in ((lite, info), (network, keras_info)):
        with TestClient(create_app(model, model_info)) as client:
            answers.append(client.post("/predict", files=[("file", ("orange.jpg", buffer.getvalue(), "image/jpeg"))]).json())
    fast, slow = (answer["predictions"][0] for answer in answers)
    assert fast["label"] == slow["label"]
    assert fast["probabilities"] == pytest.approx(slow["probabilities"], abs=1e-4)
    assert fast["unknown_score"] == pytest.approx(slow["unknown_score"], abs=1e-4)


def test_the_flatbuffer_keeps_its_metadata_through_litert(run_copy):
    lite, info = load_fresh(run_copy / "model.h5", run_copy / "weights.h5")
    assert lite is not None and info == "fresh"
    probabilities, unknown = lite(np.zeros((3, 32, 32, 3), np.float32))
    assert probabilities.shape == (3, 2) and unknown.shape == (3,)
    assert compiled.source_sha256(run_copy / "model.h5", run_copy / "weights.h5") == read_metadata(
        compiled_path(run_copy / "model.h5"))["source_sha256"]
