"""The reports a training run leaves in OUTPUT/reports/: confusion matrix picture and summary.md."""
import csv
import re

import numpy as np
from PIL import Image

from classifier import reports
from classifier.reports import plots, summary


def result_of(confusion, class_names, log, facts=None):
    """A reports.Result whose Test_Set scores make this confusion matrix, without mistakes' pictures."""
    truth, predicted = zip(*[(row, column) for (row, column), count in np.ndenumerate(confusion) for _ in range(count)])
    scores = np.full((len(truth), len(class_names)), 0.1 / (len(class_names) - 1))
    scores[np.arange(len(truth)), predicted] = 0.9
    return reports.Result(class_names, log, facts or {}, np.array(truth), scores, mistakes=[], suspects=[], training_count=0)


def summary_matrix(text):
    """The confusion matrix table of summary.md, as {true class: [counts per predicted class]}."""
    rows = re.findall(r"^\| (Cats|Dogs) \| (\d+) \| (\d+) \|$", text, flags=re.MULTILINE)
    return {name: [int(first), int(second)] for name, first, second in rows}


def test_training_run_writes_confusion_matrix_and_summary(trained, dataset):
    output, result = trained
    report_dir = output / "reports"
    with Image.open(report_dir / "confusion_matrix.png") as picture:
        assert picture.format == "PNG" and picture.width > 300
    text = (report_dir / "summary.md").read_text(encoding="utf-8")
    matrix = summary_matrix(text)
    per_class = {name: len(list((dataset / "Test_Set" / name).glob("*.jpg"))) for name in ("Cats", "Dogs")}
    assert {name: sum(counts) for name, counts in matrix.items()} == per_class  # every test photo, once
    right = matrix["Cats"][0] + matrix["Dogs"][1]
    printed = re.search(r"Test_Set accuracy: ([\d.]+)%", result.stdout).group(1)
    assert f"**{printed}%** ({right} of {sum(per_class.values())} images)" in text  # the same model as printed
    assert "| image size | 32x32 px |" in text and "| epochs asked | 1 |" in text
    for_training, held_out = map(int, re.search(r"Training_Set: (\d+) images for training, (\d+) held out", result.stdout).groups())
    assert held_out >= 2 and for_training + held_out == len(list((dataset / "Training_Set").glob("*/*.jpg")))
    assert f"| Training_Set | {for_training} images for training, {held_out} for validation (0 unreadable skipped) |" in text
    assert "- epochs run: 1" in text and "- epoch kept: 1 (validation accuracy " in text
    assert f"reports in {report_dir}" in result.stdout


def test_summary_names_the_best_epoch_ties_going_to_the_lower_loss(tmp_path):
    log = tmp_path / "training_log.csv"
    with open(log, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", "accuracy", "loss", "val_accuracy", "val_loss"])
        for epoch, (score, loss) in enumerate([(0.6, 0.9), (0.8, 0.5), (0.75, 0.2), (0.8, 0.6)], start=1):  # as EpochLog counts them
            writer.writerow([epoch, 0.5, 1.0, score, loss])
    result = result_of(np.array([[7, 3], [1, 9]]), ["Kittens", "Puppies"], log, {"model": "cnn"})
    summary.write_summary(tmp_path / "summary.md", result)
    text = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "- epochs run: 4" in text
    assert "- epoch kept: 2 (validation accuracy 80.00%)" in text  # 4 ties it, at a higher loss
    assert "**80.00%** (16 of 20 images)" in text
    assert "| Kittens | 7 | 3 |" in text and "| Puppies | 1 | 9 |" in text and "| model | cnn |" in text


def test_confusion_matrix_picture(tmp_path):
    path = plots.plot_confusion_matrix(np.array([[5, 0], [2, 3]]), ["Cats", "Dogs"], tmp_path / "matrix.png")
    with Image.open(path) as picture:
        pixels = np.asarray(picture.convert("RGB")).astype(int)
    # The cells are shaded by count: some dark blue (5) and some near white (0).
    assert (pixels[..., 2] - pixels[..., 0] > 100).any() and (pixels.min(axis=2) > 240).any()


def test_the_weights_kept_are_those_of_the_best_epoch_by_accuracy_then_loss(tmp_path):
    from classifier.training import KeepBest
    from classifier.model import make_model

    model = make_model("logistic", 8, 2)
    keep = KeepBest(str(tmp_path / "best.weights.h5"), best=(0.5, -1.0))  # a resumed run's best so far
    keep.set_model(model)
    saved = []
    for epoch, (accuracy, loss) in enumerate([(0.5, 2.0), (1.0, 0.3), (1.0, 0.1), (1.0, 0.2), (0.9, 0.01)]):
        before = (tmp_path / "best.weights.h5").stat().st_mtime_ns if saved else None
        keep.on_epoch_end(epoch, {"val_accuracy": accuracy, "val_loss": loss})
        now = (tmp_path / "best.weights.h5").stat().st_mtime_ns if (tmp_path / "best.weights.h5").exists() else None
        if now != before:
            saved.append(epoch)
    assert saved == [1, 2] and keep.best == (1.0, -0.1)


def test_the_confusion_matrix_keeps_its_axis_labels_with_long_class_names():
    # 27 letters put "true" off the left edge of the picture once: the figure grows with the names.
    for names in (["Cats", "Dogs"], ["Abyssinian_long_haired_cats", "Norwegian_Forest_Cat_photos"],
                  ["Cats", "Dogs", "Birds", "AmericanShorthairBlueTabbyLongName"]):
        figure = plots.confusion_figure(np.arange(len(names) ** 2).reshape(len(names), -1), names)
        figure.canvas.draw()
        renderer, axis = figure.canvas.get_renderer(), figure.axes[0]
        for text in (axis.xaxis.label, axis.yaxis.label, axis.title, *axis.get_xticklabels(), *axis.get_yticklabels()):
            box = text.get_window_extent(renderer)
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.x1 and box.y1 <= figure.bbox.y1, (names, text.get_text())
        plots.pyplot().close(figure)
