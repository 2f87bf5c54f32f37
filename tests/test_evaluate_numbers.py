"""predict.py's numbers against a model whose answers are known by construction: a three-class
logistic model whose weights are set by hand (no training), with a numpy copy of the same formula as
the reference. Every probability, label, confusion-matrix cell and percentage printed is compared
with what the reference says for these photos, so a wrong class order, a wrong resize, a mirrored
photo or a miscounted matrix shows as a number that differs, not as a missing word."""
import csv
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import THREE_COLOURS

SIZE = 16                                  # the photos are saved at this size: read as they are, no resizing
CLASSES = sorted(THREE_COLOURS)            # Birds, Cats, Dogs: the order of the model's outputs
SCALE = 6.0                                # logits in units of squared colour distance: confidences from 0.4 to 0.8
LEFT, RIGHT = 1.5, 0.5                     # the left half of a photo weighs three times the right: the model is not mirror-blind


def weights():
    """(W, b) of the Dense layer after Flatten: a nearest-colour classifier on the weighted mean colour,
    logit_k = SCALE * (mean_w(pixel . c_k) - |c_k|^2 / 2), pixels and colours scaled to 0-1."""
    column_weight = np.where(np.arange(SIZE) < SIZE // 2, LEFT, RIGHT)              # mean 1 over a row
    per_pixel = np.repeat(np.tile(column_weight, SIZE), 3) / (SIZE * SIZE)            # Flatten's (row, column, channel) order
    colours = np.array([THREE_COLOURS[name] for name in CLASSES], dtype=float) / 255  # (classes, 3)
    w = SCALE * per_pixel[:, None] * np.tile(colours.T, (SIZE * SIZE, 1))               # (pixels * 3, classes)
    b = -SCALE * (colours ** 2).sum(axis=1) / 2
    return w.astype(np.float32), b.astype(np.float32)


def reference(path):
    """The model's probabilities for a photo, in numpy: the answer the test expects."""
    w, b = weights()
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
    logits = pixels.reshape(-1) @ w.astype(np.float64) + b
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """model.h5 and weights.h5 of the hand-set model, saved as train_CNN.py saves a model."""
    import keras

    from classifier import artifacts
    from classifier.model import make_model
    network = make_model("logistic", SIZE, len(CLASSES))
    network.layers[-1].set_weights(list(weights()))
    folder = tmp_path_factory.mktemp("colour_model")
    artifacts.save(network, artifacts.ModelInfo(CLASSES, SIZE, model="logistic", keras_version=keras.__version__),
                   folder / "model.h5", folder / "weights.h5")
    return folder / "model.h5"


def photo(path, left, right=None, seed=0, noise=30, split=6):
    """A PNG (lossless: the reference sees the model's pixels) of colour `left`, or `left` in the first
    `split` columns and `right` in the others, with noise."""
    rng = np.random.default_rng(seed)
    pixels = np.empty((SIZE, SIZE, 3))
    pixels[:, :split], pixels[:, split:] = left, left if right is None else right
    pixels = np.clip(pixels + rng.normal(0, noise, pixels.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


# Test_Set/<folder>/<name>: what is in each photo. Three wrong by construction: a dog photo in Cats,
# a cat photo in Birds, and a mostly blue photo whose first 6 of 16 columns are orange: they weigh
# 9 against the blue's 7 (LEFT, RIGHT), so it looks orange, but its mirror image 3 against 13: --tta says Cats.
BLUE, ORANGE, GREEN = THREE_COLOURS["Cats"], THREE_COLOURS["Dogs"], THREE_COLOURS["Birds"]
TEST_SET = {
    "Birds": {f"bird{index}.png": (GREEN,) for index in range(3)} | {"really-a-cat.png": (BLUE,)},
    "Cats": {f"cat{index}.png": (BLUE,) for index in range(4)} | {"really-a-dog.png": (ORANGE,), "orange-then-blue.png": (ORANGE, BLUE)},
    "Dogs": {f"dog{index}.png": (ORANGE,) for index in range(5)},
}


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate") / "Test_Set"
    seed = 0
    for folder, photos in TEST_SET.items():
        for name, colours in photos.items():
            seed += 1
            photo(root / folder / name, *colours, seed=seed)
    return root


def expected(test_set, tta=False):
    """(confusion matrix, [(path, true class, probabilities)]) by the reference, in the order --evaluate reads them."""
    confusion, rows = np.zeros((3, 3), dtype=int), []
    for truth, name in enumerate(CLASSES):
        for path in sorted((test_set / name).iterdir()):
            p = reference(path)
            if tta:
                mirrored = path.with_name(f".mirror-{path.name}")
                Image.open(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
                p = (p + reference(mirrored)) / 2
                mirrored.unlink()
            confusion[truth, p.argmax()] += 1
            rows.append((path, truth, p))
    return confusion, rows


def printed_numbers(stdout):
    """(accuracy %, count, {class: (precision %, recall %, images)}, confusion matrix) from --evaluate's report."""
    accuracy, count = re.search(r"accuracy: ([\d.]+)% on (\d+) images", stdout).groups()
    per_class = {name: tuple(float(value) for value in re.search(rf"^{name}\s+([\d.]+)%\s+([\d.]+)%\s+(\d+)$", stdout, re.M).groups())
                 for name in CLASSES}
    matrix = stdout.split("confusion matrix")[1].splitlines()[2:2 + len(CLASSES)]
    confusion = np.array([[int(cell) for cell in line.split()[1:]] for line in matrix])
    return float(accuracy), int(count), per_class, confusion


def assert_report(stdout, confusion):
    accuracy, count, per_class, printed = printed_numbers(stdout)
    np.testing.assert_array_equal(printed, confusion)
    assert count == confusion.sum()
    assert accuracy == round(100 * np.trace(confusion) / confusion.sum(), 2)
    for index, name in enumerate(CLASSES):
        precision = 100 * confusion[index, index] / confusion[:, index].sum()
        recall = 100 * confusion[index, index] / confusion[index].sum()
        assert per_class[name] == (round(precision, 2), round(recall, 2), confusion[index].sum()), (name, per_class[name])


def test_the_reference_gets_the_planted_photos_wrong(test_set):
    """The known answers themselves: without this the other tests could compare against a matrix of right answers."""
    confusion, _ = expected(test_set)
    np.testing.assert_array_equal(confusion, [[3, 1, 0],    # Birds: really-a-cat.png says Cats
                                              [0, 4, 2],    # Cats: really-a-dog.png and orange-then-blue.png say Dogs
                                              [0, 0, 5]])   # Dogs
    tta_confusion, _ = expected(test_set, tta=True)
    np.testing.assert_array_equal(tta_confusion - confusion, [[0, 0, 0], [0, 1, -1], [0, 0, 0]])  # the mirror image rescues one


def test_evaluate_prints_the_known_accuracy_precision_recall_and_matrix(run, model_file, test_set):
    result = run("predict.py", "--evaluate", test_set, "--model", model_file)
    assert result.returncode == 0, result.stderr
    assert_report(result.stdout, expected(test_set)[0])
    assert "accuracy: 80.00% on 15 images" in result.stdout  # 12 of 15, spelled out once


def test_evaluate_with_tta_averages_the_mirror_image(run, model_file, test_set):
    result = run("predict.py", "--evaluate", test_set, "--model", model_file, "--tta")
    assert result.returncode == 0, result.stderr
    assert_report(result.stdout, expected(test_set, tta=True)[0])
    assert "accuracy: 86.67% on 15 images" in result.stdout  # orange-then-blue.png is right once mirrored too


def test_evaluate_says_what_unsure_below_buys_on_the_known_confidences(run, model_file, test_set):
    _, rows = expected(test_set)
    confidences = np.array([p.max() for _, _, p in rows])
    right = np.array([p.argmax() == truth for _, truth, p in rows])
    threshold = float(np.round(np.median(confidences), 3))
    kept = confidences >= threshold
    assert 0 < kept.sum() < len(kept) and right[kept].mean() != right.mean()  # the threshold changes both numbers
    result = run("predict.py", "--evaluate", test_set, "--model", model_file, "--unsure-below", threshold)
    assert result.returncode == 0, result.stderr
    assert (f"with --unsure-below {threshold:g}: {kept.mean():.2%} of the images labelled ({(~kept).sum()} unsure), "
            f"accuracy of those labelled {right[kept].mean():.2%}") in result.stdout, result.stdout


def test_labels_confidences_and_probabilities_are_the_known_ones(run, model_file, test_set, tmp_path):
    """Lines, CSV and JSON: the same rows, each with the reference's label and probability. With three
    classes a confidence can fall below 0.5 (the in-between photo), so `0.5 <= confidence` is no check."""
    table = tmp_path / "labels.csv"
    lines = run("predict.py", test_set, "--model", model_file, "--csv", table)
    assert lines.returncode == 0, lines.stderr
    printed = [tuple(line.split("\t")) for line in lines.stdout.splitlines()]
    with open(table, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(row["path"], row["label"], row["confidence"]) for row in rows] == printed  # the CSV holds exactly the printed rows
    assert {row["unknown_score"] for row in rows} == {""}  # a model without the unknown score
    listed = json.loads(run("predict.py", test_set, "--model", model_file, "--json").stdout)
    assert [row["path"] for row in listed] == [path for path, _, _ in printed]
    low = 0
    for (path, label, confidence), row in zip(printed, listed):
        p = reference(path)
        assert label == CLASSES[p.argmax()], (path, label, p)
        assert float(confidence) == pytest.approx(p.max(), abs=6e-5), (path, confidence, p)
        np.testing.assert_allclose([row["probabilities"][name] for name in CLASSES], p, atol=1e-4)
        low += p.max() < 0.5
    assert low >= 1  # at least one photo below 0.5: the range 1/3-1 is exercised, not only 0.5-1


def test_tta_labels_the_mirror_blind_average(run, model_file, test_set):
    """--tta when labelling: each probability is the mean of the photo's and its mirror image's, by the reference."""
    path = test_set / "Cats" / "orange-then-blue.png"
    plain = json.loads(run("predict.py", path, "--model", model_file, "--json").stdout)[0]
    averaged = json.loads(run("predict.py", path, "--model", model_file, "--json", "--tta").stdout)[0]
    _, rows = expected(test_set, tta=True)
    p = next(p for row_path, _, p in rows if row_path == path)
    assert (plain["label"], averaged["label"]) == ("Dogs", "Cats")
    np.testing.assert_allclose([averaged["probabilities"][name] for name in CLASSES], p, atol=1e-4)


def test_evaluate_counts_unreadable_files_and_scores_the_rest(run, model_file, test_set, tmp_path):
    copy = shutil.copytree(test_set, tmp_path / "Test_Set")
    (copy / "Dogs" / "notes.png").write_text("not a photo")
    (copy / "Birds" / "empty.jpg").write_bytes(b"")
    result = run("predict.py", "--evaluate", copy, "--model", model_file)
    assert result.returncode == 1
    assert_report(result.stdout, expected(test_set)[0])  # the 15 photos, as without the two files
    assert "2 files could not be read and were left out" in result.stderr
    assert f"error: {copy / 'Dogs' / 'notes.png'}: not an image" in result.stderr  # each named, as labelling does
    assert f"error: {copy / 'Birds' / 'empty.jpg'}: empty file (0 bytes)" in result.stderr


def test_evaluate_on_a_wrong_layout_is_one_line_and_exit_2(run, model_file, test_set, tmp_path):
    for name in ("Cats", "Dogs"):  # no Birds/
        shutil.copytree(test_set / name, tmp_path / "two" / name)
    loose = photo(tmp_path / "loose" / "cat.png", BLUE)  # photos, but no class folders
    takes = "--evaluate takes a folder with one sub-folder of photos per class, such as Dataset/Test_Set"
    two, missing = tmp_path / "two", tmp_path / "missing"
    for folder, error in ((two, f"{two} must hold one folder per class, named Birds, Cats, Dogs (found: Cats, Dogs)"),
                          (loose.parent, f"{loose.parent} holds no class folders: {takes}"),  # said before the model loads
                          (missing, f"{missing}: no such folder: {takes}")):
        result = run("predict.py", "--evaluate", folder, "--model", model_file)
        assert result.returncode == 2 and result.stdout == "", result
        lines = [line for line in result.stderr.splitlines() if not line.startswith("Model: ")]
        assert lines == [f"error: {error}"], result.stderr
