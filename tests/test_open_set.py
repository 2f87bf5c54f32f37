"""The `unknown` answer (open_set.py) and calibrated confidences (calibration.py): numbers against
answers known by construction, the scorer through model.h5 and every export, and `unknown` in every
output format."""
import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from conftest import COLOURS, THREE_COLOURS, make_dataset, make_photo

from classifier import artifacts, calibration, import_tensorflow, metadata, open_set
from classifier.prediction import UNKNOWN, UNSURE, Prediction, inference_model

SIZE = 32
GREEN, PURPLE = (40, 200, 60), (150, 40, 170)   # no class of the colour models below


def unit(rows):
    rows = np.asarray(rows, float)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def clusters(rng, centres, count, spread=0.3):
    """count points around each of the unit vectors centres, as features of photos of each class."""
    return np.concatenate([centre + spread * rng.normal(size=(count, len(centre))) / np.sqrt(len(centre)) for centre in centres])


# 1. The scorer's numbers.

def test_the_score_is_the_cosine_distance_to_the_kth_nearest_stored_photo():
    bank = np.eye(5)
    one = open_set.Scorer(bank.astype(np.float16), k=1, threshold=0.5)
    two = open_set.Scorer(bank.astype(np.float16), k=2, threshold=0.5)
    queries = np.array([[3, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, -1]], float)
    np.testing.assert_allclose(one.scores(queries), [0, 1 - np.sqrt(0.5), 1], atol=1e-3)  # length does not count
    np.testing.assert_allclose(two.scores(queries), [1, 1 - np.sqrt(0.5), 1], atol=1e-3)


def test_the_threshold_flags_the_target_share_of_held_out_photos_and_photos_of_other_things():
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(3, 64)))
    training, validation = clusters(rng, centres, 400), clusters(rng, centres, 700)
    scorer = open_set.fit(training, validation, seed=0, target=0.05)
    flagged = np.mean(scorer.scores(validation) > scorer.threshold)
    assert flagged == pytest.approx(0.05, abs=0.002) and scorer.flagged == pytest.approx(flagged, abs=1e-4)
    assert len(scorer.bank) == open_set.BANK_SIZE and scorer.k == open_set.K
    new = clusters(rng, centres, 300)  # more photos of the same classes: about the target share flagged
    assert np.mean(scorer.scores(new) > scorer.threshold) < 0.1
    others = clusters(rng, unit(rng.normal(size=(4, 64))), 100)  # four other kinds of photo
    assert np.mean(scorer.scores(others) > scorer.threshold) > 0.99


def test_with_few_photos_the_threshold_also_counts_training_photos_left_out_of_one_another():
    rng = np.random.default_rng(1)
    centres = unit(rng.normal(size=(2, 32)))
    training = clusters(rng, centres, 12)  # a user's dozen photos a class, nothing held out
    scorer = open_set.fit(training, np.zeros((0, 32)), seed=0)
    assert len(scorer.bank) == 24 and scorer.flagged is None
    own = clusters(rng, centres, 100)
    others = clusters(rng, unit(rng.normal(size=(3, 32))), 50)
    assert np.mean(scorer.scores(own) > scorer.threshold) < 0.15
    assert np.mean(scorer.scores(others) > scorer.threshold) > 0.95


def test_wide_features_keep_fewer_photos_within_the_byte_budget():
    features = np.random.default_rng(2).normal(size=(400, 12288))  # the logistic model's pixels at 64 px
    scorer = open_set.fit(features[:300], features[300:], seed=0)
    assert len(scorer.bank) == open_set.BANK_BYTES // (2 * 12288) and scorer.bank.dtype == np.float16


# 2. The scorer inside the network, model.h5 and the exports.

def colour_model(tmp_path, classes=COLOURS):
    """A trained-by-hand logistic model (each class its colour: the weights are the class colours' pixels)
    with a scorer fitted on photos of its classes' colours; saved as train_CNN.py saves, then loaded."""
    import_tensorflow()
    import keras

    from classifier.model import make_model
    network = make_model("logistic", SIZE, len(classes))
    colours = np.array(list(classes.values()), float) / 255
    kernel = np.stack([np.tile(colour - colours.mean(axis=0), SIZE * SIZE) for colour in colours], axis=1) * 0.05
    network.layers[-1].set_weights([kernel, np.zeros(len(classes))])
    photos = {name: [make_photo(tmp_path / "photos" / name / f"{index}.png", colour, size=(SIZE, SIZE), seed=index)
                     for index in range(30)] for name, colour in classes.items()}
    pixels = np.stack([np.asarray(Image.open(path), np.float32) for paths in photos.values() for path in paths])
    _, features = open_set.feature_model(network).predict_on_batch(pixels)
    held_out = np.arange(len(pixels)) % 3 == 0
    scorer = open_set.fit(features[~held_out], features[held_out], seed=0)
    info = artifacts.ModelInfo(list(classes), SIZE, model="logistic", keras_version=keras.__version__, weights_dtype="float16",
                               open_set=scorer.settings(), bank=scorer.bank)
    artifacts.save(network, info, tmp_path / "model.h5", tmp_path / "weights.h5")
    return tmp_path / "model.h5", scorer


@pytest.fixture(scope="module")
def scored_model(tmp_path_factory):
    return colour_model(tmp_path_factory.mktemp("scored"))


def strangers(folder, count=4):
    """Photos of none of the classes: other colours, and stripes."""
    paths = [make_photo(folder / f"green{index}.jpg", GREEN, seed=100 + index) for index in range(count)]
    paths += [make_photo(folder / f"purple{index}.jpg", PURPLE, seed=200 + index) for index in range(count)]
    stripes = np.zeros((40, 40, 3), np.uint8)
    stripes[::4] = 255
    Image.fromarray(stripes).save(folder / "stripes.png")
    return paths + [folder / "stripes.png"]


def test_the_scorer_round_trips_through_model_h5_and_the_network_gives_its_scores(scored_model, tmp_path):
    from classifier.data import load_image

    model_path, scorer = scored_model
    network, info = artifacts.load(model_path)
    stored = info.scorer
    np.testing.assert_array_equal(stored.bank, scorer.bank)
    assert (stored.k, stored.threshold, stored.flagged) == (scorer.k, pytest.approx(scorer.threshold, abs=1e-6), scorer.flagged)
    images = np.stack([load_image(path, SIZE) for path in strangers(tmp_path)]).astype(np.float32)
    probabilities, unknown = inference_model(network, info).predict_on_batch(images)
    plain, features = open_set.feature_model(network).predict_on_batch(images)
    np.testing.assert_allclose(probabilities, plain, atol=1e-6)  # the score never changes the probabilities
    np.testing.assert_allclose(unknown[:, 0], stored.scores(features), atol=1e-4)
    assert (unknown[:, 0] > stored.threshold).all()


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "tflite", "onnx"])
def test_every_export_gives_the_unknown_score(scored_model, run, tmp_path, fmt):
    import onnxruntime

    from classifier.data import load_image

    tf = import_tensorflow()
    import keras

    model_path, scorer = scored_model
    network, info = artifacts.load(model_path)
    paths = strangers(tmp_path / "photos") + [make_photo(tmp_path / "photos" / "blue.jpg", COLOURS["Cats"], seed=7)]
    images = np.stack([load_image(path, SIZE) for path in paths]).astype(np.float32)
    expected_probabilities, expected_unknown = inference_model(network, info).predict_on_batch(images)
    result = run("train_CNN.py", "--export", fmt, "--model", model_path, "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    metadata = json.loads((tmp_path / "out" / "model_metadata.json").read_text())
    assert metadata["open_set"]["threshold"] == pytest.approx(scorer.threshold, abs=1e-5)
    assert "the unknown score" in metadata["output"]
    if fmt == "keras":
        probabilities, unknown = keras.models.load_model(tmp_path / "out" / "model.keras").predict_on_batch(images)
    elif fmt == "savedmodel":
        served = tf.saved_model.load(str(tmp_path / "out" / "model_savedmodel"))
        probabilities, unknown = [np.asarray(output) for output in served.serve(images)]
    elif fmt == "onnx":
        session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"))
        probabilities, unknown = session.run(None, {"images": images})  # output_0, then output_1
    else:
        from ai_edge_litert.interpreter import Interpreter  # the LiteRT runtime predict.py uses
        outputs = Interpreter(model_path=str(tmp_path / "out" / "model.tflite")).get_signature_runner()(images=images)
        probabilities, unknown = outputs["output_0"], outputs["output_1"]
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-5)
    np.testing.assert_allclose(unknown, expected_unknown, atol=1e-4)
    assert list(np.asarray(unknown)[:, 0] > scorer.threshold) == [True] * (len(paths) - 1) + [False]


# 3. Labels and the output formats.

def test_unknown_comes_before_unsure_and_either_can_be_turned_off():
    def label(score, threshold, unsure_below=0.9, probabilities=(0.7, 0.3)):
        return Prediction("a.jpg", np.array(probabilities), ["Cats", "Dogs"], None, unsure_below, score, threshold).label
    assert label(0.6, 0.5) == UNKNOWN
    assert label(0.4, 0.5) == UNSURE
    assert label(0.4, 0.5, unsure_below=0.0) == "Cats"
    assert label(0.6, None) == UNSURE                 # --no-unknown
    assert label(None, 0.5, unsure_below=0.0) == "Cats"   # a model without the score
    assert label(0.5, 0.5, unsure_below=0.0) == "Cats"    # at the threshold: still a class


def test_unknown_in_lines_csv_json_and_the_sheet(scored_model, run, tmp_path):
    model_path, scorer = scored_model
    own = [make_photo(tmp_path / "own" / f"{name}.jpg", colour, seed=50) for name, colour in COLOURS.items()]
    photos = strangers(tmp_path / "other") + own
    lines = run("predict.py", "--model", model_path, *photos, "--csv", tmp_path / "rows.csv", "--sheet", tmp_path / "sheet.png")
    assert lines.returncode == 0, lines.stderr  # an unknown photo is an answer, not an error
    printed = [line.split("\t") for line in lines.stdout.splitlines()]
    assert [label for _, label, _ in printed] == [UNKNOWN] * (len(photos) - 2) + ["Cats", "Dogs"]
    with open(tmp_path / "rows.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [[row["path"], row["label"], row["confidence"]] for row in rows] == printed
    scores = [float(row["unknown_score"]) for row in rows]
    assert all(score > scorer.threshold for score in scores[:-2]) and all(score <= scorer.threshold for score in scores[-2:])
    as_json = json.loads(run("predict.py", "--model", model_path, *photos, "--json").stdout)
    assert [row["label"] for row in as_json] == [row["label"] for row in rows]
    assert [row["unknown_score"] for row in as_json] == pytest.approx(scores, abs=1e-4)
    with Image.open(tmp_path / "sheet.png") as sheet:
        frame = np.asarray(sheet.convert("RGB"))
    from classifier import sheet as contact_sheet
    y, x = contact_sheet.HEADER + 2, contact_sheet.GAP + 2  # the first cell's frame: an unknown photo's colour
    assert tuple(frame[y, x]) == contact_sheet.STRANGER


def test_no_unknown_and_a_threshold_of_ones_own(scored_model, run, tmp_path):
    model_path, scorer = scored_model
    photos = strangers(tmp_path)
    off = run("predict.py", "--model", model_path, *photos, "--no-unknown")
    assert {line.split("\t")[1] for line in off.stdout.splitlines()} <= set(COLOURS)
    lenient = run("predict.py", "--model", model_path, *photos, "--unknown-above", "1.99")
    assert UNKNOWN not in [line.split("\t")[1] for line in lenient.stdout.splitlines()]
    strict = run("predict.py", "--model", model_path, *photos, "--unknown-above", "0")
    assert [line.split("\t")[1] for line in strict.stdout.splitlines()] == [UNKNOWN] * len(photos)
    for flags, words in ((("--unknown-above", "3"), "between 0 and 2"), (("--unknown-above", "0.5", "--no-unknown"), "contradict")):
        refused = run("predict.py", "--model", model_path, *photos, *flags)
        assert refused.returncode == 2 and words in refused.stderr


def test_evaluate_says_how_many_of_its_own_photos_are_flagged(scored_model, run, tmp_path):
    model_path, _ = scored_model
    folder = make_dataset(tmp_path, train_per_class=1, test_per_class=10) / "Test_Set"
    make_photo(folder / "Cats" / "odd one.jpg", GREEN, seed=3)  # a photo of something else filed as a cat
    result = run("predict.py", "--model", model_path, "--evaluate", folder)
    assert result.returncode == 0, result.stderr
    assert "unknown (score above" in result.stdout and ": 1 of 21 images flagged (4.76%)" in result.stdout


def test_serve_says_not_one_of_the_classes(scored_model):
    from fastapi.testclient import TestClient

    from classifier.server import create_app
    from conftest import COLOURS as colours

    network, info = artifacts.load(scored_model[0])

    def upload(colour, name):
        buffer = io.BytesIO()
        Image.fromarray(np.full((40, 40, 3), colour, np.uint8)).save(buffer, "PNG")
        return "file", (name, buffer.getvalue(), "image/png")

    with TestClient(create_app(network, info, unsure_below=0.9)) as client:
        page = client.get("/").text
        assert "Cats, Dogs" in page and "not one of: " in page
        answer = client.post("/predict", files=[upload(GREEN, "grass.png"), upload(colours["Dogs"], "dog.png")]).json()
    grass, dog = answer["predictions"]
    assert grass["label"] == UNKNOWN and grass["unknown_score"] > info.scorer.threshold
    assert dog["label"] == "Dogs" and dog["unknown_score"] <= info.scorer.threshold


def test_a_three_class_model_trained_by_train_cnn_flags_photos_of_another_kind(run, tmp_path):
    data = make_dataset(tmp_path / "data", train_per_class=30, test_per_class=8, colours=THREE_COLOURS)
    trained = run("train_CNN.py", "--data", data, "--arch", "logistic", "--image-size", SIZE, "--epochs", 4,
                  "--output", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    info = artifacts.ModelInfo.read(tmp_path / "run" / "model.h5")
    assert info.scorer is not None and info.open_set["validation_flagged"] <= 0.2  # 3 held out a class: coarse
    others = [make_photo(tmp_path / "other" / f"{index}.jpg", PURPLE if index % 2 else (128, 128, 128), seed=index)
              for index in range(10)]
    labelled = run("predict.py", "--model", tmp_path / "run" / "model.h5", *others, data / "Test_Set")
    labels = [line.split("\t")[1] for line in labelled.stdout.splitlines()]
    assert labels[:10] == [UNKNOWN] * 10
    assert labels[10:].count(UNKNOWN) <= 1 and len(labels) == 10 + 24
    summary = (tmp_path / "run" / "reports" / "summary.md").read_text()
    assert "expected calibration error" in summary and (tmp_path / "run" / "reports" / "reliability.png").is_file()


# 4. Calibration.

def test_the_calibration_error_of_a_calibrated_and_of_an_overconfident_model():
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.5, 1, 20_000)
    right = rng.uniform(size=confidence.size) < confidence  # right exactly as often as it says
    labels = np.where(right, 0, 1)
    probabilities = np.stack([confidence, 1 - confidence], axis=1)
    assert calibration.expected_calibration_error(probabilities, labels) < 0.01
    overconfident = calibration.scaled(probabilities, 1 / 3)  # the same logits times 3
    before = calibration.expected_calibration_error(overconfident, labels)
    temperature, ece_before, after = calibration.calibrate(overconfident, labels)
    assert before > 0.1 and ece_before == pytest.approx(before)
    assert temperature == pytest.approx(3, rel=0.05) and after < 0.01
    assert (calibration.scaled(overconfident, temperature).argmax(axis=1) == overconfident.argmax(axis=1)).all()
    kept, _, _ = calibration.calibrate(probabilities, labels)
    assert kept == pytest.approx(1, abs=0.05)


def test_the_reliability_bins_count_every_photo_once():
    probabilities = np.array([[0.95, 0.05], [0.9, 0.1], [0.55, 0.45], [0.3, 0.7]])
    rows = calibration.reliability(probabilities, [0, 1, 0, 1])
    assert sum(count for _, _, count, _, _ in rows) == 4
    high = [row for row in rows if row[0] < 0.95 <= row[1]][0]
    assert high[2] == 1 and high[4] == 1.0
    assert calibration.expected_calibration_error(probabilities, [0, 1, 0, 1]) == pytest.approx((0.05 + 0.9 + 0.45 + 0.3) / 4)


def test_fit_unknown_gives_an_older_model_its_score_without_touching_its_weights(trained, dataset, run, tmp_path):
    """train_CNN.py --fit-unknown on a model.h5 written before the unknown score: the same split of its
    Training_Set, a scorer that flags a photo of another colour and not one of its own; weights.h5 as it was."""
    import shutil
    from dataclasses import replace

    import h5py

    output, _ = trained
    for name in ("model.h5", "weights.h5"):
        shutil.copy2(output / name, tmp_path / name)
    with h5py.File(tmp_path / "model.h5", "a") as file:  # as an earlier version wrote it: no score, no bank
        del file[metadata.BANK_KEY]
    replace(artifacts.ModelInfo.read(tmp_path / "model.h5"), open_set={}).write(tmp_path / "model.h5")
    assert artifacts.ModelInfo.read(tmp_path / "model.h5").scorer is None
    weights = (tmp_path / "weights.h5").read_bytes()
    result = run("train_CNN.py", "--fit-unknown", "--model", tmp_path / "model.h5", "--data", dataset)
    assert result.returncode == 0, result.stderr
    assert "Saved the unknown score in" in result.stdout and (tmp_path / "weights.h5").read_bytes() == weights
    scorer = artifacts.ModelInfo.read(tmp_path / "model.h5").scorer
    assert scorer is not None and len(scorer.bank) > 0
    own = make_photo(tmp_path / "own.jpg", COLOURS["Cats"], seed=77)
    other = make_photo(tmp_path / "other.jpg", GREEN, seed=78)
    labels = [line.split("\t")[1] for line in run("predict.py", "--model", tmp_path / "model.h5", own, other).stdout.splitlines()]
    assert labels[1] == UNKNOWN and labels[0] != UNKNOWN
