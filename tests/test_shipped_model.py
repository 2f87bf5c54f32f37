"""The shipped model.h5/weights.h5: predict.py finds them beside itself, and phone-sized photos of
any shape are labelled as well as the 180x180 ones they were trained on. (The README's quick start
labels photos with them in a fresh Python.)"""
import random
import re

import numpy as np
import pytest
from PIL import Image

from conftest import PROJECT, SHARED_DATASET

MODEL, WEIGHTS = PROJECT / "model.h5", PROJECT / "weights.h5"
PER_CLASS = 20  # photos of each class, resized to 12 megapixels (0.17 s each to make)
pytestmark = pytest.mark.skipif(not MODEL.is_file() or not WEIGHTS.is_file(), reason="no shipped model.h5/weights.h5")


def labels(result, folder):
    """{file name: label} of the photos in folder, from predict.py's lines (path, label, confidence)."""
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    return {path.rsplit("/", 1)[-1]: label for path, label, _ in lines if path.rsplit("/", 2)[-2] == folder}


def test_shipped_files_label_generated_images(tmp_path, run):
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (500, 375), (120, 90, 60)).save(tmp_path / "photos" / "plain.jpg")
    result = run("predict.py", tmp_path / "photos")  # the defaults: model.h5 and weights.h5 beside the script
    assert result.returncode == 0, result.stderr
    assert f"weights: {WEIGHTS}" in result.stderr
    assert list(labels(result, "photos").values()) == ["unknown"]  # a plain brown picture: neither a cat nor a dog
    forced = run("predict.py", tmp_path / "photos", "--no-unknown")
    assert list(labels(forced, "photos").values()) in (["Cats"], ["Dogs"])


@pytest.mark.skipif(not SHARED_DATASET.is_dir(), reason=f"{SHARED_DATASET} not found")
def test_phone_sized_photos_are_labelled_like_the_originals(tmp_path, run):
    rng = random.Random(0)
    originals, phone = tmp_path / "originals", tmp_path / "phone"
    for folder in (originals, phone):
        folder.mkdir()
    truth = {}
    for name in ("Cats", "Dogs"):
        source = SHARED_DATASET / "Test_Set" / name
        for index, path in enumerate(rng.sample(sorted(source.iterdir()), PER_CLASS)):
            photo = Image.open(path)
            photo.save(originals / path.name)
            # Alternate a 12-megapixel 4:3 landscape and a 3:4 portrait, as phones take them.
            size = (4000, 3000) if index % 2 else (2268, 3024)
            photo.resize(size, Image.Resampling.BICUBIC).save(phone / path.name, quality=92)
            truth[path.name] = name
    result = run("predict.py", originals, phone)
    assert result.returncode == 0, result.stderr
    small, large = labels(result, "originals"), labels(result, "phone")
    assert len(small) == len(large) == len(truth) == 2 * PER_CLASS
    accuracy_small = sum(small[name] == label for name, label in truth.items()) / len(truth)
    accuracy_large = sum(large[name] == label for name, label in truth.items()) / len(truth)
    agreement = sum(small[name] == large[name] for name in truth) / len(truth)
    assert agreement >= 0.95, (agreement, accuracy_small, accuracy_large)
    assert accuracy_large >= accuracy_small - 0.03, (accuracy_small, accuracy_large)


ACCURACY_FLOOR = 0.95   # the model card: 99.04 % on all 4,999 Test_Set photos; 99 % on this sample (1 cat missed)
SAMPLE_PER_CLASS = 50   # 100 photos: a few seconds, and one wrong label in twenty would already fail


@pytest.mark.skipif(not SHARED_DATASET.is_dir(), reason=f"{SHARED_DATASET} not found")
def test_shipped_model_scores_at_least_the_floor_on_shared_test_photos(tmp_path, run):
    """predict.py --evaluate on 100 shared Test_Set photos (links, never copies): a model that always
    answers one class, or one whose class names are swapped, scores about 50 % or 2 % and fails."""
    rng = random.Random(25)
    for name in ("Cats", "Dogs"):
        (tmp_path / name).mkdir()
        for path in rng.sample(sorted((SHARED_DATASET / "Test_Set" / name).iterdir()), SAMPLE_PER_CLASS):
            (tmp_path / name / path.name).symlink_to(path)
    result = run("predict.py", "--evaluate", tmp_path)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"accuracy: ([\d.]+)% on (\d+) images", result.stdout).group(1)) / 100
    assert f"on {2 * SAMPLE_PER_CLASS} images" in result.stdout
    assert accuracy >= ACCURACY_FLOOR, result.stdout
    # Recall per class too: 100 % cats and 90 % dogs is not the model the card describes.
    for name in ("Cats", "Dogs"):
        recall = float(re.search(rf"^{name}\s+[\d.]+%\s+([\d.]+)%", result.stdout, re.M).group(1)) / 100
        assert recall >= ACCURACY_FLOOR - 0.03, result.stdout
    # Real cats and dogs are seldom `unknown`: the card says 0.82 % of Test_Set (1 of this sample).
    flagged = int(re.search(r"unknown \(score above [\d.]+\): (\d+) of", result.stdout).group(1))
    assert flagged <= 3, result.stdout


NEITHER = SHARED_DATASET.parent / "neither"
NEITHER_SAMPLE = 60     # of each kind: animals, and objects, food and scenes


@pytest.mark.skipif(not NEITHER.is_dir(), reason=f"{NEITHER} not found")
def test_shipped_model_labels_photos_of_neither_unknown(tmp_path, run):
    """The card: 99.1 % of the 431 photos of neither flagged, 97.7 % of the animals. On 120 of them
    (links) it flags 59 of 60 animals and 60 of 60 others; the floor, the goal of 95 %, leaves room
    for 2 more misses. The model shipped before (fine-tuned at a tenth of the rate) flags 54 of the
    animals and fails, as would one without its unknown score."""
    rng = random.Random(0)
    photos = sorted(NEITHER.glob("*.jpg"))
    animals = rng.sample([path for path in photos if path.name.startswith("inet-animal")], NEITHER_SAMPLE)
    others = rng.sample([path for path in photos if not path.name.startswith("inet-animal")], NEITHER_SAMPLE)
    for kind, sample in (("animals", animals), ("others", others)):
        (tmp_path / kind).mkdir()
        for path in sample:
            (tmp_path / kind / path.name).symlink_to(path)
    result = run("predict.py", tmp_path / "animals", tmp_path / "others")
    assert result.returncode == 0, result.stderr  # unknown is an answer, not an error
    for kind, floor in (("animals", 0.95), ("others", 0.95)):
        found = labels(result, kind)
        assert len(found) == NEITHER_SAMPLE, result.stdout
        assert sum(label == "unknown" for label in found.values()) >= floor * NEITHER_SAMPLE, (kind, found)


@pytest.mark.skipif(not SHARED_DATASET.is_dir(), reason=f"{SHARED_DATASET} not found")
def test_grad_cam_of_the_shipped_model_is_hot_on_the_animal(tmp_path, run):
    """predict.py --heatmaps with the default model: shared photos pasted on one half of a grey canvas twice
    as wide; each confident label's heatmap is hotter on the animal's half (measured: by 11 to 67 in red
    minus blue on the overlay, 0 to 255). An unsure label (below 0.9) may look anywhere, so it is left out."""
    rng = random.Random(3)
    (tmp_path / "photos").mkdir()
    for name in ("Cats", "Dogs"):
        for index, path in enumerate(rng.sample(sorted((SHARED_DATASET / "Test_Set" / name).iterdir()), 3)):
            animal = Image.open(path).convert("RGB").resize((288, 288))
            for side, x in (("left", 0), ("right", 288)):
                canvas = Image.new("RGB", (576, 288), (128, 128, 128))
                canvas.paste(animal, (x, 0))
                canvas.save(tmp_path / "photos" / f"{name}-{index}-{side}.jpg")
    # --no-unknown: half of each picture is a grey wall, which may well be `unknown`; the heatmap is the point here.
    result = run("predict.py", tmp_path / "photos", "--heatmaps", tmp_path / "why", "--no-unknown")
    assert result.returncode == 0, result.stderr
    assert "Heatmaps: Grad-CAM" in result.stderr
    confident = 0
    for line in result.stdout.splitlines():
        path, label, confidence = line.split("\t")
        name = path.rsplit("/", 1)[-1]
        assert label == name.split("-")[0], line  # pasted on grey, still recognised
        if float(confidence) < 0.9:
            continue
        overlay = np.asarray(Image.open(tmp_path / "why" / f"{name}.png").convert("RGB"), dtype=float)
        red_minus_blue = overlay[..., 0] - overlay[..., 2]  # jet: red where the evidence is
        half = overlay.shape[1] // 2
        left, right = red_minus_blue[:, :half].mean(), red_minus_blue[:, half:].mean()
        assert (left > right + 5) if name.endswith("-left.jpg") else (right > left + 5), (name, left, right)
        confident += 1
    assert confident >= 8, result.stdout  # of the 12


def test_the_shipped_model_tflite_is_fresh_and_small_enough():
    """The compiled form ships with model.h5 and weights.h5, made from them (else predict.py would
    fall back to TensorFlow on every run it cannot rewrite it), and the three fit in 40 MB."""
    from classifier.compiled import compiled_path, is_fresh

    assert is_fresh(MODEL, WEIGHTS), "model.tflite is stale: python predict.py --model model.h5 ANY_PHOTO rewrites it"
    assert MODEL.stat().st_size + WEIGHTS.stat().st_size + compiled_path(MODEL).stat().st_size <= 40 * 10**6
