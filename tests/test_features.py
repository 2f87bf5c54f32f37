"""features.py: the pretrained model's frozen blocks run once, and its top trains on their output."""
import numpy as np
import pytest

from classifier import import_tensorflow
from classifier.data import Sample

tf = import_tensorflow()
from classifier.features import feature_dataset, frozen_features  # noqa: E402
from classifier.model import make_model, split_frozen  # noqa: E402

from conftest import make_photo  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def model():
    return make_model("efficientnet-lite0", SIZE, 3)


def test_the_top_on_the_frozen_output_is_the_whole_model(model):
    frozen, top = split_frozen(model)
    pixels = np.random.default_rng(0).uniform(0, 255, (4, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(top(frozen(pixels)), model(pixels, training=False), atol=1e-5)
    # The same layers, not copies: training the top trains the model that is saved.
    assert top.get_layer("trainable_blocks").get_layer("block12_dwconv") is model.get_layer("efficientnet_lite0").get_layer("block12_dwconv")
    assert top.layers[-1] is model.layers[-1]


def test_the_cache_holds_each_photo_and_its_mirror_image(tmp_path, model):
    frozen, _ = split_frozen(model)
    samples = [Sample(make_photo(tmp_path / f"{index}.png", (200, 40 * index, 90), size=(SIZE, SIZE), seed=index), index % 3)
               for index in range(5)]
    pairs = frozen_features(frozen, samples, SIZE, batch_size=2, mirrors=True, verbose=0)
    singles = frozen_features(frozen, samples, SIZE, batch_size=4, mirrors=False, verbose=0)
    assert pairs.shape == (5, 2, *frozen.output.shape[1:]) and pairs.dtype == np.float16
    np.testing.assert_array_equal(pairs[:, 0], singles)
    photos = np.stack([tf.io.decode_png(tf.io.read_file(str(sample.path))).numpy() for sample in samples]).astype("float32")
    np.testing.assert_allclose(pairs[:, 1], frozen(photos[:, :, ::-1]).numpy(), atol=2e-2, rtol=2e-3)  # float16's precision


def test_each_epoch_takes_a_photo_or_its_mirror_at_random():
    count = 64
    samples = [Sample(f"{index}.jpg", index % 2) for index in range(count)]
    pairs = np.stack([np.zeros((count, 1, 1, 1)), np.ones((count, 1, 1, 1))], axis=1).astype(np.float16)
    pairs += np.arange(count, dtype=np.float16).reshape(-1, 1, 1, 1, 1) * 2  # photo i: 2i, its mirror 2i + 1
    dataset, seen = feature_dataset(pairs, samples, 16, shuffle=True, seed=3, mirrored=True), []
    for _ in range(2):  # two epochs
        values = np.concatenate([x.numpy().ravel() for x, _ in dataset])
        assert sorted(values // 2) == list(range(count))  # every photo once an epoch, as one of its pair
        seen.append(values % 2)
    assert 0 < np.mean(seen[0]) < 1 and not np.array_equal(seen[0], seen[1])  # both kinds, and not the same each epoch


def test_few_photos_train_the_head_alone_on_the_whole_backbone(tmp_path, run):
    """27 training photos, fewer than training.HEAD_ONLY_BELOW: only the new head trains, on the pooled
    output of the whole backbone. (tests/test_resume_fine_tune.py fine-tunes the top blocks.)"""
    from conftest import THREE_COLOURS, make_dataset
    from classifier import artifacts
    from classifier.efficientnet import load_imagenet_weights, make_backbone

    data = make_dataset(tmp_path / "data", train_per_class=10, test_per_class=3, colours=THREE_COLOURS)
    result = run("train_CNN.py", "--data", data, "--output", tmp_path / "run", "--epochs", 2, "--image-size", 32)
    assert result.returncode == 0, result.stderr
    assert "Running the backbone once" in result.stdout
    trained = artifacts.load(tmp_path / "run" / "model.h5")[0].get_layer("efficientnet_lite0")
    imagenet = make_backbone(32)
    load_imagenet_weights(imagenet)
    for name in ("stem_conv", "block11_expand_conv", "block12_expand_conv", "head_conv"):
        stored = imagenet.get_layer(name).get_weights()[0].astype(np.float16)  # the saved files hold float16
        assert np.array_equal(trained.get_layer(name).get_weights()[0], stored), name


@pytest.mark.parametrize("epochs, head, fine_tune", [(2, 1, 1), (20, 10, 10), (5, 2, 3), (1, 1, 0)])
def test_the_head_takes_its_default_share_of_the_epochs(epochs, head, fine_tune):
    from classifier.config import RunConfig
    from classifier.training import plan_phases

    phases = plan_phases(RunConfig(epochs=epochs, learning_rate=1e-3))
    assert [phase.end_epoch - phase.first_epoch for phase in phases] == [head, fine_tune][:len(phases)]
    assert phases[-1].end_epoch == epochs and [phase.kind.value for phase in phases] == ["head", "fine-tune"][:len(phases)]


@pytest.mark.parametrize("arch, fine_tune_rate", [("efficientnet-lite0", 1e-3 / 30), ("efficientnet-lite2", 1e-3 / 10)])
def test_the_top_blocks_fine_tune_at_the_models_share_of_the_learning_rate(arch, fine_tune_rate):
    from classifier.config import RunConfig
    from classifier.training import plan_phases

    head, fine_tune = plan_phases(RunConfig(arch=arch, epochs=2, learning_rate=1e-3))
    assert head.learning_rate == 1e-3 and fine_tune.learning_rate == pytest.approx(fine_tune_rate)


@pytest.mark.parametrize("photos, given, epochs, passes", [
    (45, 0, 10, 60),      # 25 photos a class, 10 % held out: 2 steps a pass, 60 passes an epoch, 1,200 steps in 10 epochs
    (180, 0, 10, 20),     # 6 steps a pass
    (180, 7, 7, 29),      # --epochs 7: still 1,200 steps or more (1,218)
    (499, 0, 10, 8),      # 16 steps a pass
    (500, 0, 14, 1),      # fine-tuned (more_epochs_for_few_photos): one pass an epoch
])
def test_head_only_epochs_go_over_the_photos_often_enough(photos, given, epochs, passes):
    from classifier.config import RunConfig
    from classifier.training import passes_per_epoch, with_model_defaults

    config = with_model_defaults(RunConfig(epochs=given), photos)
    assert config.epochs == epochs
    assert passes_per_epoch(config, photos, 32) == passes


@pytest.mark.parametrize("photos, head_only", [(45, True), (499, True), (500, False), (16_199, False)])
def test_few_photos_train_only_the_head(photos, head_only):
    from classifier.config import RunConfig
    from classifier.training import HEAD_ONLY_BELOW, plan_phases

    assert HEAD_ONLY_BELOW == 500
    phases = plan_phases(RunConfig(epochs=20, learning_rate=1e-3), photos)
    assert [phase.kind.value for phase in phases] == (["head"] if head_only else ["head", "fine-tune"])
    assert phases[0].first_epoch == 0 and phases[-1].end_epoch == 20 and phases[0].learning_rate == 1e-3


@pytest.mark.parametrize("arch, photos, given, expected", [
    ("efficientnet-lite0", 16_199, 0, 2),    # the shared set: the model's default
    ("efficientnet-lite0", 180, 0, 10),      # 100 photos a class, 10 % held out: the head only (passes_per_epoch below)
    ("efficientnet-lite2", 900, 0, 8),       # fine-tuned: 29 steps an epoch, 4x the default
    ("efficientnet-lite0", 1_600, 0, 4),     # 50 steps an epoch: twice the default
    ("efficientnet-lite0", 180, 3, 3),       # --epochs given: as given
    ("cnn", 180, 0, 18),                     # from scratch: its own default, whatever the count
])
def test_few_photos_get_more_epochs_of_a_pretrained_model(arch, photos, given, expected):
    from classifier.config import RunConfig
    from classifier.training import with_model_defaults

    assert with_model_defaults(RunConfig(arch=arch, epochs=given), photos).epochs == expected


@pytest.mark.parametrize("arch, given, expected", [
    ("classic", 0, 64),    # as the classic tutorial trained it
    ("cnn", 0, 32),
    ("efficientnet-lite0", 0, 32),
    ("classic", 16, 16),   # --batch-size given: as given
])
def test_the_batch_size_is_the_models_unless_given(arch, given, expected):
    from classifier.config import RunConfig
    from classifier.model import MODELS
    from classifier.training import with_model_defaults

    assert RunConfig(arch=arch).batch_size == 0 and MODELS["classic"].batch_size == 64
    assert with_model_defaults(RunConfig(arch=arch, batch_size=given)).batch_size == expected
