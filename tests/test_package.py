"""Focused tests of the package: the two files, the input pipeline, and train/predict agreement."""
import h5py
import numpy as np
import pytest

from classifier import artifacts
from classifier.data import image_dataset
from classifier.images import load_image
from classifier.model import make_model
from conftest import make_dataset


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    model = make_model("cnn", 32)
    metadata = {"class_names": ["Cats", "Dogs"], "image_size": 32, "interpolation": "area"}
    artifacts.save(model, metadata, folder / "model.h5", folder / "weights.h5")
    images = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3)).astype("float32")
    return folder, model, images


def test_model_h5_carries_its_metadata(saved):
    folder, _, _ = saved
    assert artifacts.read_metadata(folder / "model.h5")["class_names"] == ["Cats", "Dogs"]
    model, metadata = artifacts.load(folder / "model.h5", folder / "weights.h5")
    assert metadata["image_size"] == 32 and model.input_shape == (None, 32, 32, 3)


def test_weights_h5_is_the_legacy_layout_that_load_weights_reads(saved):
    folder, model, images = saved
    with h5py.File(folder / "weights.h5") as file:
        layer_names = [getattr(name, "decode", lambda: name)() for name in file.attrs["layer_names"]]
        assert "model_weights" not in file and layer_names == [layer.name for layer in model.layers]
    fresh = make_model("cnn", 32)  # new random weights...
    assert not np.allclose(fresh.predict_on_batch(images), model.predict_on_batch(images))
    fresh.load_weights(str(folder / "weights.h5"))  # ...replaced by the saved ones
    np.testing.assert_allclose(fresh.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6)


def test_atomic_save_leaves_no_temporary_files(saved):
    folder, _, _ = saved
    assert sorted(path.name for path in folder.iterdir()) == ["model.h5", "weights.h5"]


def test_pipeline_labels_follow_sorted_folder_names(tmp_path):
    data = make_dataset(tmp_path, train_per_class=3, test_per_class=1)
    dataset, count, bad = image_dataset(data / "Training_Set", ["Cats", "Dogs"], 16, batch_size=4)
    images, labels = map(np.concatenate, zip(*[(x.numpy(), y.numpy()) for x, y in dataset]))
    assert (count, bad) == (6, 0) and images.shape == (6, 16, 16, 3)
    blue_is_cat = images[..., 2].mean(axis=(1, 2)) > images[..., 0].mean(axis=(1, 2))
    np.testing.assert_array_equal(labels.reshape(-1), np.where(blue_is_cat, 0.0, 1.0))


def test_prediction_reads_photos_as_training_does(tmp_path):
    """predict.py's reader and the training pipeline give the same pixels (up to rounding), even on
    noisy JPEGs where another decoder or resize filter differs by several grey levels."""
    data = make_dataset(tmp_path, train_per_class=3, test_per_class=1)
    dataset, _, _ = image_dataset(data / "Training_Set", ["Cats", "Dogs"], 24, batch_size=6)
    trained = next(iter(dataset))[0].numpy()
    files = sorted((data / "Training_Set" / "Cats").iterdir()) + sorted((data / "Training_Set" / "Dogs").iterdir())
    ours = np.stack([load_image(path, 24) for path in files]).astype(float)
    assert np.abs(ours - trained).max() <= 1.0


def test_float16_files_are_half_the_size_and_predict_alike(saved, tmp_path):
    folder, model, images = saved
    artifacts.save(model, {"class_names": ["Cats", "Dogs"], "image_size": 32}, tmp_path / "model.h5", tmp_path / "weights.h5", float16=True)
    for name in ("model.h5", "weights.h5"):
        assert (tmp_path / name).stat().st_size < 0.6 * (folder / name).stat().st_size
    with h5py.File(tmp_path / "weights.h5") as file:
        kernel = file[file.attrs["layer_names"][-1]]  # the last Dense layer
        assert {kernel[name].dtype for name in kernel.attrs["weight_names"]} == {np.dtype("float16")}
    loaded, metadata = artifacts.load(tmp_path / "model.h5", tmp_path / "weights.h5")
    assert metadata["weights_dtype"] == "float16" and loaded.weights[0].dtype == "float32"
    np.testing.assert_allclose(loaded.predict_on_batch(images), model.predict_on_batch(images), atol=2e-3)
