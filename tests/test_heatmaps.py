"""Heatmaps (classifier/heatmap.py, predict.py --heatmaps): tiny models learn that a bright square
means class "Square"; the heatmap of a photo with the square on one side must light up that side."""
import numpy as np
import pytest
from PIL import Image

SIZE = 32


def square_photos(count, side, seed):
    """Noisy dark photos; side "left"/"right" adds a bright square there, None adds nothing."""
    rng = np.random.default_rng(seed)
    photos = np.clip(rng.normal(70, 25, (count, SIZE, SIZE, 3)), 0, 255)
    for photo in photos:
        top = rng.integers(4, SIZE - 16)
        if side == "left":
            photo[top:top + 12, 2:14] = 250
        elif side == "right":
            photo[top:top + 12, SIZE - 14:SIZE - 2] = 250
    return photos.astype(np.float32)


def trained(arch, **options):
    """The named model kind, small, trained for a few seconds: class 1 "Square" (either side), class 0 "Plain"."""
    import keras

    from classifier import model as models
    keras.utils.set_random_seed(0)
    build = {"cnn": lambda: models.make_cnn(SIZE, 2, blocks=(8, 16), dense=16),
             "logistic": lambda: models.make_logistic(SIZE, 2)}[arch]
    network = build()
    photos = np.concatenate([square_photos(12, "left", 1), square_photos(12, "right", 2), square_photos(24, None, 3)])
    labels = np.array([1] * 24 + [0] * 24)
    network.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    network.fit(photos, labels, epochs=6, batch_size=16, verbose=0)
    return network


@pytest.fixture(scope="module")
def models():
    return {arch: trained(arch) for arch in ("cnn", "logistic")}


def halves(heatmap):
    """(mass of the left half, mass of the right half)."""
    middle = heatmap.shape[1] // 2
    return heatmap[:, :middle].sum(), heatmap[:, middle:].sum()


@pytest.mark.parametrize("arch, method", [("cnn", "Grad-CAM"), ("logistic", "saliency")])
def test_the_heatmap_lights_up_the_side_with_the_square(models, arch, method):
    from classifier.heatmap import Explainer

    explainer = Explainer(models[arch])
    assert explainer.method.startswith(method)
    for side in ("left", "right"):
        photos = square_photos(4, side, seed=9)
        square = np.ones(len(photos), dtype=int)  # explain class "Square"
        for heatmap in explainer.heatmaps(photos, square):
            assert heatmap.max() == pytest.approx(1.0) and heatmap.min() >= 0
            left, right = halves(heatmap)
            assert (left > 1.5 * right) if side == "left" else (right > 1.5 * left), (arch, side, left, right)


def last_layer_of(kind):
    return lambda network: [layer for layer in network.layers if isinstance(layer, kind)][-1]


@pytest.mark.parametrize("arch, size, side", [
    ("efficientnet-lite0", 64, 2),  # its feature map is inside the nested backbone; 64 px / stride 32
    ("cnn", 32, 2),                 # the last block's ReLU, before its pooling
    ("classic", 32, 13),            # the last Conv2D
    ("logistic", 32, 32),           # no convolution: a saliency map, one value per pixel
])
def test_every_model_kind_gets_a_heatmap_and_the_explainer_scores_as_the_model_does(arch, size, side):
    """make_model as train_CNN.py calls it, untrained (the pretrained kind with its ImageNet weights)."""
    import keras

    from classifier.heatmap import Explainer
    from classifier.model import make_model
    network = make_model(arch, size, 2)
    explainer = Explainer(network)
    expected = {"efficientnet-lite0": lambda network: network.get_layer("efficientnet_lite0").get_layer("head_relu"),
                "cnn": last_layer_of(keras.layers.Activation), "classic": last_layer_of(keras.layers.Conv2D),
                "logistic": lambda network: None}[arch](network)
    assert explainer.layer is expected
    assert explainer.method.startswith("saliency" if expected is None else "Grad-CAM on layer ")
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    heatmaps = explainer.heatmaps(images, [0, 1])
    assert [heatmap.shape for heatmap in heatmaps] == [(side, side)] * 2
    for heatmap in heatmaps:
        assert np.isfinite(heatmap).all() and heatmap.min() >= 0 and heatmap.max() in (0, pytest.approx(1))
    _, logits = explainer._forward(images)  # layer by layer, the backbone's two-output copy standing in for it
    assert np.allclose(keras.ops.softmax(logits), network(images, training=False), atol=1e-5)


@pytest.fixture(scope="module")
def saved_logistic(models, tmp_path_factory):
    """The trained logistic model as train_CNN.py saves one."""
    from classifier import artifacts

    folder = tmp_path_factory.mktemp("logistic")
    info = artifacts.ModelInfo(["Plain", "Square"], SIZE, model="logistic")
    artifacts.save(models["logistic"], info, folder / "model.h5", folder / "weights.h5")
    return folder / "model.h5"


def test_predict_writes_one_heatmap_per_photo_and_draws_them_on_the_sheet(run, saved_logistic, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for index, side in enumerate(("left", "right")):
        Image.fromarray(square_photos(1, side, seed=index)[0].astype(np.uint8)).save(photos / f"square.{side}.png")
    heatmaps, sheet = tmp_path / "why" / "new", tmp_path / "sheet.png"
    result = run("predict.py", photos, "--model", saved_logistic, "--heatmaps", heatmaps, "--sheet", sheet)
    assert result.returncode == 0, result.stderr
    assert "Heatmaps: saliency" in result.stderr
    assert sorted(path.name for path in heatmaps.iterdir()) == ["square.left.png.png", "square.right.png.png"]
    picture = np.asarray(Image.open(heatmaps / "square.left.png.png").convert("RGB"), dtype=float)
    assert picture.shape[0] > SIZE and picture.shape[1] >= SIZE  # the photo, above its caption
    overlay = picture[:SIZE, :SIZE]
    red_minus_blue = overlay[..., 0] - overlay[..., 2]  # jet: red where the map is high
    assert red_minus_blue[:, :SIZE // 2].mean() > red_minus_blue[:, SIZE // 2:].mean()
    assert Image.open(sheet).size[0] > 0


def test_an_unwritable_heatmaps_folder_is_refused_before_any_photo_is_read(run, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(photo)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run("predict.py", photo, "--heatmaps", blocker / "heatmaps", "--model", tmp_path / "no-model.h5")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert result.stderr.startswith("error: --heatmaps ") and "Model:" not in result.stderr


def test_two_photos_of_the_same_name_get_two_heatmaps_each_its_own(run, saved_logistic, tmp_path):
    """a/square.png (square on the left) and b/square.png (on the right): square.png.png and square.png-2.png,
    in the order the photos are labelled, each hot on its own photo's side: neither overwrote nor swapped."""
    for folder, side in (("a", "left"), ("b", "right")):
        (tmp_path / folder).mkdir()
        Image.fromarray(square_photos(1, side, seed=3)[0].astype(np.uint8)).save(tmp_path / folder / "square.png")
    result = run("predict.py", tmp_path / "a", tmp_path / "b", "--model", saved_logistic, "--heatmaps", tmp_path / "why")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "why").iterdir()) == ["square.png-2.png", "square.png.png"]
    assert "heatmaps of 2 images" in result.stderr
    for name, side in (("square.png.png", "left"), ("square.png-2.png", "right")):
        overlay = np.asarray(Image.open(tmp_path / "why" / name).convert("RGB"), dtype=float)[:SIZE, :SIZE]  # above the caption
        red_minus_blue = overlay[..., 0] - overlay[..., 2]  # jet: red where the map is high
        left, right = red_minus_blue[:, :SIZE // 2].mean(), red_minus_blue[:, SIZE // 2:].mean()
        assert (left > right + 3) if side == "left" else (right > left + 3), (name, left, right)  # measured: by 8


def test_each_heatmap_picture_says_the_label_and_its_confidence(run, saved_logistic, tmp_path, monkeypatch):
    """Under the photo, a band with the caption predict.py prints for it: label and confidence (and the
    class the map is of, when the label is unsure)."""
    from classifier import heatmap

    photo = tmp_path / "photos" / "square.png"
    photo.parent.mkdir()
    Image.fromarray(square_photos(1, "left", seed=5)[0].astype(np.uint8)).save(photo)
    captions, real_caption = [], heatmap.with_caption
    monkeypatch.setattr(heatmap, "with_caption", lambda picture, caption: captions.append(caption) or real_caption(picture, caption))
    result = run("predict.py", photo, "--model", saved_logistic, "--heatmaps", tmp_path / "why")
    assert result.returncode == 0, result.stderr
    _, label, confidence = result.stdout.strip().split("\t")
    assert captions == [f"{label}  {float(confidence):.1%}"]
    result = run("predict.py", photo, "--model", saved_logistic, "--heatmaps", tmp_path / "why2", "--unsure-below", "1")
    assert captions[1] == f"unsure (heatmap of {label})  {float(confidence):.1%}"

    plain = Image.new("RGB", (SIZE, SIZE), (90, 90, 90))
    drawn = np.asarray(heatmap.with_caption(plain, "Dogs  97.3%"))
    assert drawn.shape[0] > SIZE and (drawn[:SIZE, :SIZE] == 90).all()  # the picture untouched, the band below it
    band = drawn[SIZE:]
    assert (band == heatmap.CAPTION_INK).all(axis=-1).any() and (band == heatmap.CAPTION_PAPER).all(axis=-1).any()
    wider = np.asarray(heatmap.with_caption(plain, "a much longer label than the picture is wide  50.0%"))
    assert wider.shape[1] > SIZE  # the words in full, not cut to the picture's width
