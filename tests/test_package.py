"""Focused tests of the package: the two files and their ModelInfo, the input pipeline, the model
registry, and the pieces predict.py and train_CNN.py are made of (no script run here)."""
import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from classifier import artifacts, import_tensorflow, metadata
from classifier.artifacts import ModelInfo
from classifier.config import RunConfig
from classifier.data import Sample, check_layout, image_dataset, labelled_samples, load_image, split_off
from classifier.model import make_model
from classifier.prediction import Prediction, confusion_matrix, format_report, probabilities
from conftest import THREE_COLOURS, make_dataset, make_photo

INFO = ModelInfo(["Cats", "Dogs"], 32, model="cnn", test_accuracy=0.5, keras_version="3", run={"epochs": 1})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    model = make_model("cnn", 32, 2)
    artifacts.save(model, INFO, folder / "model.h5", folder / "weights.h5")  # float32 weights: INFO's default
    images = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3)).astype("float32")
    return folder, model, images


def test_model_h5_carries_its_model_info(saved):
    folder, _, _ = saved
    assert ModelInfo.read(folder / "model.h5") == INFO
    model, info = artifacts.load(folder / "model.h5", folder / "weights.h5")
    assert info == INFO and model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 2)


def test_model_info_of_an_earlier_version_keeps_what_it_knows(tmp_path):
    """A model.h5 from an earlier train_CNN.py: unknown keys are dropped, missing ones take their defaults."""
    with h5py.File(tmp_path / "model.h5", "w") as file:
        file.attrs[metadata.METADATA_KEY] = json.dumps({"class_names": ["Cats", "Dogs"], "image_size": 96, "best_epoch": 7})
    info = ModelInfo.read(tmp_path / "model.h5")
    assert (info.class_names, info.image_size, info.interpolation, info.run) == (["Cats", "Dogs"], 96, "area", {})


def test_weights_h5_is_the_legacy_layout_that_load_weights_reads(saved):
    folder, model, images = saved
    with h5py.File(folder / "weights.h5") as file:
        layer_names = [getattr(name, "decode", lambda: name)() for name in file.attrs["layer_names"]]
        assert "model_weights" not in file and layer_names == [layer.name for layer in model.layers]
    fresh = make_model("cnn", 32, 2)  # new random weights...
    assert not np.allclose(fresh.predict_on_batch(images), model.predict_on_batch(images))
    fresh.load_weights(str(folder / "weights.h5"))  # ...replaced by the saved ones
    np.testing.assert_allclose(fresh.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6)


def test_atomic_save_leaves_no_temporary_files(saved):
    folder, _, _ = saved
    assert sorted(path.name for path in folder.iterdir()) == ["model.h5", "weights.h5"]


def test_float16_files_are_half_the_size_and_predict_alike(saved, tmp_path):
    folder, model, images = saved
    artifacts.save(model, replace(INFO, weights_dtype="float16"), tmp_path / "model.h5", tmp_path / "weights.h5")
    for name in ("model.h5", "weights.h5"):
        assert (tmp_path / name).stat().st_size < 0.6 * (folder / name).stat().st_size
    with h5py.File(tmp_path / "weights.h5") as file:
        kernel = file[file.attrs["layer_names"][-1]]  # the last Dense layer
        assert {kernel[name].dtype for name in kernel.attrs["weight_names"]} == {np.dtype("float16")}
    loaded, info = artifacts.load(tmp_path / "model.h5", tmp_path / "weights.h5")
    assert info.weights_dtype == "float16" and loaded.weights[0].dtype == "float32"
    np.testing.assert_allclose(loaded.predict_on_batch(images), model.predict_on_batch(images), atol=2e-3)


def test_weights_beside_a_model_file(saved, tmp_path):
    folder, _, _ = saved
    assert artifacts.weights_beside(folder / "model.h5") == folder / "weights.h5"
    alone = tmp_path / "model.h5"  # no weights.h5 beside it: its own weights, never another folder's
    alone.write_bytes((folder / "model.h5").read_bytes())
    assert artifacts.weights_beside(alone) == alone


@pytest.mark.parametrize("arch", ["cnn", "classic", "logistic"])
@pytest.mark.parametrize("classes", [2, 3])
def test_every_model_ends_in_one_probability_per_class(arch, classes):
    model = make_model(arch, 32, classes)
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    outputs = np.asarray(model.predict_on_batch(pixels))
    assert outputs.shape == (2, classes) and model.layers[-1].name == "predictions"
    np.testing.assert_allclose(outputs.sum(axis=1), 1, atol=1e-5)


def test_from_scratch_batchnorm_catches_up_within_a_few_dozen_steps():
    import_tensorflow()
    import keras
    momenta = {layer.momentum for layer in make_model("cnn", 32, 2).layers if isinstance(layer, keras.layers.BatchNormalization)}
    # Keras's 0.99 left small runs at chance (test_train_cli.test_the_cnn_learns_from_a_few_hundred_photos tests the effect).
    assert momenta and max(momenta) <= 0.9


def test_layout_gives_sorted_class_names_two_or_more(tmp_path):
    data = make_dataset(tmp_path, train_per_class=1, test_per_class=1, colours=THREE_COLOURS)
    assert check_layout(data) == ["Birds", "Cats", "Dogs"]


def test_pipeline_labels_follow_sorted_folder_names(tmp_path):
    data = make_dataset(tmp_path, train_per_class=3, test_per_class=1, colours=THREE_COLOURS)
    names = check_layout(data)
    samples, bad = labelled_samples(data / "Training_Set", names, 16)
    assert bad == 0 and len(samples) == 9
    images, labels = map(np.concatenate, zip(*[(x.numpy(), y.numpy()) for x, y in image_dataset(samples, 16, batch_size=4)]))
    assert images.shape == (9, 16, 16, 3) and images.dtype == np.float32
    colours = np.array([THREE_COLOURS[name] for name in names])
    means = images.mean(axis=(1, 2))
    nearest = np.linalg.norm(means[:, None, :] - colours[None], axis=2).argmin(axis=1)
    np.testing.assert_array_equal(labels, nearest)  # each photo carries the index of its folder's colour


def test_split_off_holds_out_a_share_of_each_class():
    samples = [Sample(Path(f"{label}-{index}.jpg"), label) for label, count in ((0, 20), (1, 5), (2, 2)) for index in range(count)]
    kept, held = split_off(samples, 0.1, seed=1)
    assert sorted(map(str, [s.path for s in kept + held])) == sorted(map(str, [s.path for s in samples]))  # each photo once
    assert [sum(s.label == label for s in held) for label in range(3)] == [2, 1, 1]  # 10 %, at least one
    assert split_off(samples, 0.1, seed=1) == (kept, held)  # the seed fixes the choice...
    assert split_off(samples, 0.1, seed=2)[1] != held       # ...and another seed makes another
    assert split_off(samples, 0, seed=1) == (samples, [])


def test_prediction_reads_photos_as_training_does(tmp_path):
    """predict.py's reader (load_image) and the training pipeline give the same pixels: one reader."""
    data = make_dataset(tmp_path, train_per_class=3, test_per_class=1)
    samples, _ = labelled_samples(data / "Training_Set", ["Cats", "Dogs"], 24)
    trained = next(iter(image_dataset(samples, 24, batch_size=6)))[0].numpy()
    ours = np.stack([load_image(sample.path, 24) for sample in samples])
    assert ours.dtype == np.uint8
    np.testing.assert_array_equal(ours.astype("float32"), trained)


def test_a_prediction_labels_with_its_most_probable_class():
    prediction = Prediction(Path("a.jpg"), np.array([0.2, 0.7, 0.1]), ["Birds", "Cats", "Dogs"])
    assert (prediction.index, prediction.label, prediction.confidence) == (1, "Cats", pytest.approx(0.7))


def test_a_sigmoid_output_of_an_older_model_becomes_two_probabilities():
    np.testing.assert_allclose(probabilities([[0.9], [0.25]]), [[0.1, 0.9], [0.75, 0.25]])
    np.testing.assert_array_equal(probabilities([[0.2, 0.8]]), [[0.2, 0.8]])  # softmax outputs pass as they are


def test_report_per_class_precision_recall_and_matrix():
    confusion = confusion_matrix([0, 0, 0, 1, 1, 2, 2, 2], [0, 0, 1, 1, 2, 2, 2, 0], 3)
    np.testing.assert_array_equal(confusion, [[2, 1, 0], [0, 1, 1], [1, 0, 2]])  # rows: truth
    lines = format_report(confusion, ["Birds", "Cats", "Dogs"]).splitlines()
    assert lines[0] == "accuracy: 62.50% on 8 images"
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:6]}
    assert rows["Birds"] == ["66.67%", "66.67%", "3"] and rows["Cats"] == ["50.00%", "50.00%", "2"]
    assert rows["Dogs"] == ["66.67%", "66.67%", "3"]
    assert [line.split()[1:] for line in lines[-3:]] == [["2", "1", "0"], ["0", "1", "1"], ["1", "0", "2"]]


def test_one_photo_is_singular_in_what_the_scripts_print(tmp_path, capsys):
    from classifier.config import counted
    from classifier.writers import WRITERS
    assert (counted(1, "photo"), counted(0, "photo"), counted(2, "Test_Set photo")) == ("1 photo", "0 photos", "2 Test_Set photos")
    assert format_report(confusion_matrix([0], [0], 2), ["Cats", "Dogs"]).splitlines()[0] == "accuracy: 100.00% on 1 image"
    sheet = WRITERS["sheet"](tmp_path / "sheet.png")
    sheet.add(Prediction(make_photo(tmp_path / "a.jpg", (200, 120, 40)), np.array([0.2, 0.8]), ["Cats", "Dogs"]))
    sheet.close()
    assert f"contact sheet of 1 image: {tmp_path / 'sheet.png'}" in capsys.readouterr().err


def test_run_config_round_trips_and_ignores_unknown_keys():
    config = RunConfig(data="d", output="o", arch="cnn", image_size=32, epochs=3, seed=5, float16=False)
    assert RunConfig.from_dict({**config.to_dict(), "from_a_later_version": 1}) == config


def test_class_folders_are_listed_in_one_place(tmp_path):
    """data.class_folders: sorted, hidden and plain files left out, none for a missing folder; no other
    module lists a split's folders itself."""
    import re

    from classifier.data import class_folders

    for name in ("Dogs", "Cats", ".cache"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("not a class")
    assert class_folders(tmp_path) == ["Cats", "Dogs"] and class_folders(tmp_path / "missing") == []
    project = Path(__file__).resolve().parent.parent
    listing = re.compile(r"scandir|iterdir|listdir|glob\(")
    sources = [*project.glob("*.py"), *(project / "classifier").glob("*.py")]
    found = {path.name for path in sources if listing.search(path.read_text(encoding="utf-8"))}
    assert found <= {"data.py", "runs.py", "download.py"}, found  # runs.py: run folders; download.py: the archive's photos
