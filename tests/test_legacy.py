"""Old model files: model.h5/weights.h5 as Keras 2 scripts wrote them, read by legacy.py and predict.py.

The files are written here with h5py in the Keras 2 layout (attributes keras_version "2.1.4",
backend, model_config JSON; a model_weights group whose layer groups list weight_names such as
"conv2d_1/kernel:0"). Their weights come from a Keras 3 reference model built layer for layer,
so the rebuilt model must predict exactly what the reference predicts; predictions come as one
probability per class (a Dense(1) sigmoid output p as [1 - p, p]).
"""
import json
import warnings as python_warnings

import h5py
import numpy as np
import pytest

from conftest import COLOURS, THREE_COLOURS, make_photo

from classifier import import_tensorflow
from classifier.config import UsageError

import_tensorflow()
import keras  # noqa: E402
from keras import layers  # noqa: E402

from classifier import artifacts, legacy  # noqa: E402
from classifier.artifacts import ModelInfo  # noqa: E402
from classifier.data import load_image  # noqa: E402
from classifier.prediction import probabilities  # noqa: E402

SIZE = 32
GLOROT = {"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None}}


def keras2_layer(kind, name, **config):
    """A layer config as Keras 2.1 wrote it, extra keys (initializers, regularizers...) included."""
    config = {"name": name, "trainable": True, **config}
    if kind in ("Conv2D", "Dense"):
        config.update(kernel_initializer=GLOROT, bias_initializer={"class_name": "Zeros", "config": {}},
                      kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                      kernel_constraint=None, bias_constraint=None, use_bias=True)
    if kind == "Conv2D":
        config.update(strides=[1, 1], padding="valid", data_format="channels_last", dilation_rate=[1, 1])
    if kind == "MaxPooling2D":
        config.update(pool_size=[2, 2], strides=[2, 2], padding="valid", data_format="channels_last")
    return {"class_name": kind, "config": config}


def classic_cnn(head_units=1, head_activation="sigmoid"):
    """The classic tutorial network, as Keras 2 configs and as a Keras 3 reference with random weights."""
    configs = [
        keras2_layer("Conv2D", "conv2d_1", filters=4, kernel_size=[3, 3], activation="relu",
                     batch_input_shape=[None, SIZE, SIZE, 3], dtype="float32"),
        keras2_layer("MaxPooling2D", "max_pooling2d_1"),
        keras2_layer("Conv2D", "conv2d_2", filters=4, kernel_size=[3, 3], activation="relu"),
        keras2_layer("MaxPooling2D", "max_pooling2d_2"),
        keras2_layer("Flatten", "flatten_1"),
        keras2_layer("Dense", "dense_1", units=8, activation="relu"),
        keras2_layer("Dropout", "dropout_1", rate=0.5, noise_shape=None, seed=None),
        keras2_layer("Dense", "dense_2", units=head_units, activation=head_activation),
    ]
    reference = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), layers.Rescaling(1 / 255),
        layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(8, activation="relu"), layers.Dropout(0.5),
        layers.Dense(head_units, activation=head_activation),
    ])
    randomize(reference)
    return configs, reference


def randomize(model, seed=0):
    # Biases and BatchNormalization statistics start at 0 and 1; random values test they are loaded too.
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = [rng.normal(0, 0.2, weight.shape).astype("float32") for weight in layer.weights]
        layer.set_weights([np.abs(value) + 0.5 if "variance" in weight.path else value
                           for weight, value in zip(layer.weights, values)])


def weights_of(configs, reference):
    """{Keras 2 layer name: [(weight name, array)]}: the reference's weights under the old names, in order."""
    weighted = [layer for layer in reference.layers if layer.weights]
    names = [config["config"]["name"] for config in configs if config["class_name"] in ("Conv2D", "Dense", "BatchNormalization")]
    assert len(names) == len(weighted)
    result = {}
    for name, layer in zip(names, weighted):
        short = [weight.path.split("/")[-1] for weight in layer.weights]
        result[name] = [(f"{name}/{weight}:0", value) for weight, value in zip(short, layer.get_weights())]
    return result


def write_weights_group(group, configs, weights):
    group.attrs["layer_names"] = np.array([config["config"]["name"].encode() for config in configs if config["class_name"] != "InputLayer"])
    group.attrs["backend"], group.attrs["keras_version"] = b"tensorflow", b"2.1.4"
    for config in configs:
        name = config["config"]["name"]
        if config["class_name"] == "InputLayer":
            continue
        layer_group = group.create_group(name)
        pairs = weights.get(name, [])
        layer_group.attrs["weight_names"] = np.array([weight_name.encode() for weight_name, _ in pairs], dtype="S")
        for weight_name, value in pairs:
            layer_group.create_dataset(weight_name, data=value)


def write_keras2_model(path, configs, weights, style="2.1"):
    """model.h5 as Keras 2's model.save wrote it; style 2.1 keeps the layers as a bare list."""
    config = configs if style == "2.1" else {"name": "sequential_1", "layers": configs}
    with h5py.File(path, "w") as file:
        file.attrs["keras_version"], file.attrs["backend"] = b"2.1.4", b"tensorflow"
        file.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": config}).encode()
        file.attrs["training_config"] = json.dumps({"loss": "binary_crossentropy", "metrics": ["accuracy"],
                                                    "optimizer_config": {"class_name": "Adam", "config": {"lr": 0.001}}}).encode()
        write_weights_group(file.create_group("model_weights"), configs, weights)
    return path


def write_keras2_weights(path, configs, weights):
    """weights.h5 as Keras 2's model.save_weights wrote it: the same groups, at the root."""
    with h5py.File(path, "w") as file:
        write_weights_group(file, configs, weights)
    return path


def photos(count=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, SIZE, SIZE, 3)).astype("float32")


def predicted(model, images):
    return model.predict_on_batch(images)


def old_files(tmp_path, head_units=1, head_activation="sigmoid"):
    """model.h5 and weights.h5 of a Keras 2 classic CNN, and the Keras 3 reference that predicts what they should."""
    configs, reference = classic_cnn(head_units, head_activation)
    weights = weights_of(configs, reference)
    return (write_keras2_model(tmp_path / "model.h5", configs, weights),
            write_keras2_weights(tmp_path / "weights.h5", configs, weights), reference)


def test_rebuilds_a_keras_2_1_classic_cnn(tmp_path):
    configs, reference = classic_cnn()
    path = write_keras2_model(tmp_path / "model.h5", configs, weights_of(configs, reference))
    model, info = artifacts.load(path, class_names=["Kittens", "Puppies"])
    assert isinstance(info, ModelInfo)
    assert info.image_size == SIZE and info.class_names == ["Kittens", "Puppies"] and info.keras_version == "2.1.4"
    expected = predicted(reference, photos())
    np.testing.assert_allclose(predicted(model, photos()), expected, atol=1e-6)
    assert expected.std() > 1e-3  # the photos really give different answers
    # One probability per class: the sigmoid's p is the second class's.
    np.testing.assert_allclose(probabilities(predicted(model, photos())), np.hstack([1 - expected, expected]), atol=1e-6)


def test_rebuilds_the_keras_2_2_layout_with_batchnorm_activation_and_softmax_pair(tmp_path):
    configs = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, SIZE, SIZE, 3], "dtype": "float32",
                                                 "sparse": False, "ragged": False, "name": "conv2d_input"}},
        keras2_layer("Conv2D", "conv2d", filters=4, kernel_size=[3, 3], activation="linear"),
        {"class_name": "BatchNormalization", "config": {"name": "batch_normalization", "trainable": True, "axis": [3],
                                                        "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True,
                                                        "beta_initializer": {"class_name": "Zeros", "config": {}}}},
        {"class_name": "Activation", "config": {"name": "activation", "trainable": True, "activation": "relu"}},
        keras2_layer("MaxPooling2D", "max_pooling2d"),
        keras2_layer("Flatten", "flatten"),
        keras2_layer("Dense", "dense", units=2, activation="softmax"),
    ]
    reference = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), layers.Rescaling(1 / 255), layers.Conv2D(4, 3), layers.BatchNormalization(),
        layers.Activation("relu"), layers.MaxPooling2D(), layers.Flatten(), layers.Dense(2, activation="softmax")])
    randomize(reference, seed=1)
    path = write_keras2_model(tmp_path / "model.h5", configs, weights_of(configs, reference), style="2.2")
    model, _ = artifacts.load(path, class_names=["Cats", "Dogs"])
    expected = predicted(reference, photos())
    assert expected.shape == (6, 2) and expected[:, 1].std() > 1e-3
    np.testing.assert_allclose(probabilities(predicted(model, photos())), expected, atol=1e-6)  # both columns, as they are


def test_weights_h5_replaces_the_weights_in_model_h5(tmp_path):
    configs, first = classic_cnn()
    _, second = classic_cnn()
    randomize(second, seed=7)
    model_path = write_keras2_model(tmp_path / "model.h5", configs, weights_of(configs, first))
    weights_path = write_keras2_weights(tmp_path / "weights.h5", configs, weights_of(configs, second))
    model, _ = artifacts.load(model_path, weights_path, ["Cats", "Dogs"])
    np.testing.assert_allclose(predicted(model, photos()), predicted(second, photos()), atol=1e-6)
    assert not np.allclose(predicted(first, photos()), predicted(second, photos()), atol=1e-3)


def test_predict_cli_labels_photos_with_an_old_model(tmp_path, run):
    model_path, weights_path, reference = old_files(tmp_path)
    for index, (name, colour) in enumerate(COLOURS.items()):
        make_photo(tmp_path / "photos" / f"{name}.jpg", colour, size=(50, 40), seed=index)
    result = run("predict.py", tmp_path / "photos", "--model", model_path, "--weights", weights_path,
                 "--classes", "Kittens,Puppies", "--json")
    assert result.returncode == 0, result.stderr
    assert "Keras 2.1.4" in result.stderr and "classes Kittens (0), Puppies (1)" in result.stderr
    assert "warning" not in result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 2
    for row in rows:
        p = float(predicted(reference, load_image(row["path"], SIZE)[None].astype("float32"))[0, 0])
        assert row["probabilities"] == pytest.approx({"Kittens": 1 - p, "Puppies": p}, abs=1e-4)
        label, confidence = ("Puppies", p) if p >= 0.5 else ("Kittens", 1 - p)
        assert row["label"] == label and row["confidence"] == pytest.approx(confidence, abs=1e-4)


def test_weights_default_to_the_weights_h5_beside_the_old_model(tmp_path, run):
    configs, inside = classic_cnn()
    _, beside = classic_cnn()
    randomize(beside, seed=7)
    model_path = write_keras2_model(tmp_path / "model.h5", configs, weights_of(configs, inside))
    write_keras2_weights(tmp_path / "weights.h5", configs, weights_of(configs, beside))
    photo = make_photo(tmp_path / "a.jpg", COLOURS["Cats"], size=(SIZE, SIZE))
    result = run("predict.py", photo, "--model", model_path, "--classes", "Cats,Dogs", "--json")
    assert result.returncode == 0, result.stderr
    p = float(predicted(beside, load_image(photo, SIZE)[None].astype("float32"))[0, 0])
    assert json.loads(result.stdout)[0]["probabilities"]["Dogs"] == pytest.approx(p, abs=1e-4)
    assert f"(weights: {tmp_path / 'weights.h5'})" in result.stderr


def test_dense_1_with_softmax_is_loaded_with_a_clear_warning(tmp_path, run, recwarn):
    configs, reference = classic_cnn(head_activation="softmax")
    model_path = write_keras2_model(tmp_path / "model.h5", configs, weights_of(configs, reference))
    make_photo(tmp_path / "a.jpg", COLOURS["Cats"])
    filters = list(python_warnings.filters)
    result = run("predict.py", tmp_path / "a.jpg", "--model", model_path, "--weights", model_path, "--classes", "Cats,Dogs")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "Dense(1) with softmax" in warnings[0] and "always outputs 1.0" in warnings[0]
    assert not [warning for warning in recwarn if "softmax" in str(warning.message)]  # our line, not also Keras's
    assert python_warnings.filters == filters  # Keras's warning silenced in the model's call only, not for the process
    assert result.stdout.strip().split("\t")[1:] == ["Dogs", "1.0000"]


def test_an_output_that_is_no_probability_is_loaded_with_a_warning(tmp_path, capsys):
    configs, reference = classic_cnn(head_units=2, head_activation="linear")
    artifacts.load(write_keras2_model(tmp_path / "model.h5", configs, weights_of(configs, reference)), class_names=["Cats", "Dogs"])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "activation is linear" in warnings[0] and "not probabilities" in warnings[0]


# N classes: Dense(N) softmax, named with --classes A,B,C.

def test_three_class_softmax_model_is_read_with_its_class_names(tmp_path, run):
    model_path, weights_path, reference = old_files(tmp_path, head_units=3, head_activation="softmax")
    for index, (name, colour) in enumerate(THREE_COLOURS.items()):
        make_photo(tmp_path / "photos" / f"{name}.jpg", colour, size=(50, 40), seed=index)
    result = run("predict.py", tmp_path / "photos", "--model", model_path, "--classes", "Ants,Bees,Wasps", "--json")
    assert result.returncode == 0, result.stderr
    assert "classes Ants (0), Bees (1), Wasps (2)" in result.stderr and "warning" not in result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 3
    for row in rows:
        expected = predicted(reference, load_image(row["path"], SIZE)[None].astype("float32"))[0]
        assert list(row["probabilities"]) == ["Ants", "Bees", "Wasps"]
        np.testing.assert_allclose(list(row["probabilities"].values()), expected, atol=1e-4)
        assert row["label"] == ["Ants", "Bees", "Wasps"][expected.argmax()]
        assert row["confidence"] == pytest.approx(expected.max(), abs=1e-4)


def test_classes_must_name_as_many_classes_as_the_model_has(tmp_path, run, monkeypatch):
    model_path, _, _ = old_files(tmp_path, head_units=3, head_activation="softmax")
    photo = make_photo(tmp_path / "a.jpg", COLOURS["Cats"])
    result = run("predict.py", photo, "--model", model_path, "--classes", "Cats,Dogs")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"error: --classes names 2 classes but {model_path} has 3: name each, in order"
    monkeypatch.setattr(legacy, "DATASET_DIR", tmp_path / "no dataset")  # so no folder names to fall back on
    result = run("predict.py", photo, "--model", model_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {model_path} has 3 classes but stores no names: pass them in order, as --classes A,B,C"


def test_class_names_default_to_the_training_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(legacy, "DATASET_DIR", tmp_path)
    assert legacy.default_class_names(2, "model.h5") == ["Cats", "Dogs"]  # no Training_Set there
    for name in ("Tulips", "Roses", ".hidden", "Daisies"):
        (tmp_path / "Training_Set" / name).mkdir(parents=True)
    assert legacy.default_class_names(3, "model.h5") == ["Daisies", "Roses", "Tulips"]
    assert legacy.default_class_names(2, "model.h5") == ["Cats", "Dogs"]  # the folders do not fit a two-class model
    with pytest.raises(UsageError, match="has 4 classes but stores no names"):
        legacy.default_class_names(4, "model.h5")


# Files that cannot be read: one clear error each.

def test_files_that_cannot_be_rebuilt_are_one_clear_error(tmp_path):
    configs, reference = classic_cnn()
    weights = weights_of(configs, reference)
    lstm = configs[:4] + [{"class_name": "LSTM", "config": {"name": "lstm_1", "units": 4}}] + configs[4:]
    with pytest.raises(UsageError, match="LSTM layer"):
        artifacts.load(write_keras2_model(tmp_path / "lstm.h5", lstm, weights))
    with pytest.raises(UsageError, match="holds only weights"):
        artifacts.load(write_keras2_weights(tmp_path / "weights.h5", configs, weights))
    grey = [keras2_layer("Conv2D", "conv2d_1", filters=4, kernel_size=[3, 3], activation="relu",
                         batch_input_shape=[None, SIZE, SIZE, 1])] + configs[1:]
    with pytest.raises(UsageError, match="square RGB"):
        artifacts.load(write_keras2_model(tmp_path / "grey.h5", grey, weights))
    with pytest.raises(UsageError, match=r"gives \(6, 6, 4\) outputs per photo"):  # no Flatten and Dense: a feature map
        artifacts.load(write_keras2_model(tmp_path / "maps.h5", configs[:4], weights), class_names=["Cats", "Dogs"])
    _, other = classic_cnn()
    other_weights = weights_of(configs, other)
    other_weights["dense_1"] = [(name, value[:-1]) for name, value in other_weights["dense_1"]]  # a different shape
    with pytest.raises(UsageError, match="does not fit the model rebuilt from"):
        artifacts.load(write_keras2_model(tmp_path / "model.h5", configs, weights),
                       write_keras2_weights(tmp_path / "other.h5", configs, other_weights))


def test_a_damaged_or_functional_config_is_one_clear_error(tmp_path):
    configs, reference = classic_cnn()
    path = write_keras2_model(tmp_path / "model.h5", configs, weights_of(configs, reference))
    with h5py.File(path, "a") as file:
        file.attrs["model_config"] = b'{"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"units": -'
    with pytest.raises(UsageError, match="could not rebuild its Keras 2.1.4 layers"):
        artifacts.load(path)
    with h5py.File(path, "a") as file:
        file.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {"layers": [], "input_layers": []}}).encode()
    with pytest.raises(UsageError, match="holds a Keras 2.1.4 Model model; only Sequential models"):
        artifacts.load(path)
