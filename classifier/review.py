"""The review every training run leaves in OUTPUT/reports/, beside the learning curves and the confusion matrix:

- mistakes.png: the Test_Set photos the kept model got wrong, most confident first, each under the
  heatmap of the class it wrongly chose (heatmap.py), at most MAX_MISTAKES of them;
- suspects.csv (path,label,predicted,confidence): the training photos (Training_Set, the validation
  part included) whose folder the model disagrees with, most confident first: candidates for
  mislabels. Scored by the final model, augmentation off, in one extra pass over those photos. The
  model was trained on most of them, so a photo it still puts in another class with confidence is
  one it could not fit: good evidence of a wrong folder. Out-of-fold scores (each photo judged by
  a model that never saw it) would find more, but need k extra trainings;
- unsure.png: what predict.py --unsure-below P buys on the test photos: the share of photos that
  keep a label, and the accuracy of those, for P from 0.5 to 0.99;
- reliability.png: whether the confidences mean what they say on the test photos (calibration.py):
  the accuracy of the photos in each confidence bin against that confidence, with the ECE; and
  the share of the test photos (all of the model's classes) that the unknown score flags;
- index.html: one page with the settings, the learning curves, the confusion matrix, the mistakes,
  the top suspects and the unsure curve; every picture is embedded (data: URIs), so the page is
  complete on its own: it can be mailed or archived, and it fetches nothing.

The Test_Set predictions are the ones train() made for its accuracy: the test photos are read once.
"""
import base64
import csv
import html
import io
import math
from pathlib import Path

import numpy as np

from .calibration import BINS
from .pages import render
from .prediction import coverage, probabilities

MAX_MISTAKES = 48                                      # thumbnails in mistakes.png
SUSPECTS_SHOWN = 20                                    # rows of suspects.csv shown in index.html
STRONG = 0.9                                           # a suspect at this confidence or more is counted as strong
UNSURE_TABLE = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)   # the thresholds the report's table lists
SUSPECTS_HEADER = ("path", "label", "predicted", "confidence")


def write_review(report_dir, model, class_names, image_size, batch_size, test_samples, test_scores, training_samples,
                 training_scores, facts, unknown=(None, None)):
    """Write mistakes.png, suspects.csv, unsure.png, reliability.png and index.html (and a section of
    summary.md) into report_dir.

    test_scores: the model's outputs on test_samples, in their order; training_samples: every
    labelled photo of Training_Set (validation part included), and training_scores the model's outputs
    on them, not augmented; unknown: (the unknown score of each test photo, its threshold).
    """
    report_dir = Path(report_dir)
    test_scores = probabilities(test_scores)
    truth = np.array([sample.label for sample in test_samples])
    mistakes = find_mistakes(test_samples, test_scores)
    draw_mistakes(report_dir / "mistakes.png", mistakes, len(test_samples), class_names, model, image_size, batch_size)

    suspects = find_suspects(training_samples, probabilities(training_scores), class_names)
    write_suspects(report_dir / "suspects.csv", suspects)

    table = unsure_table(test_scores, truth)
    plot_unsure(report_dir / "unsure.png", test_scores, truth)
    ece = plot_reliability(report_dir / "reliability.png", test_scores, truth)
    test_unknown, threshold = unknown
    flagged = float(np.mean(np.asarray(test_unknown) > threshold)) if test_unknown is not None and len(test_unknown) else None
    append_to_summary(report_dir / "summary.md", len(mistakes), len(test_samples), suspects, len(training_samples), table, ece, flagged)
    write_index(report_dir, facts, class_names, mistakes, len(test_samples), suspects, len(training_samples), table, ece, flagged)
    return report_dir


def find_mistakes(samples, scores):
    """[(sample, predicted class, confidence)] of the wrongly labelled samples, most confident first."""
    predicted, confidence = scores.argmax(axis=1), scores.max(axis=1)
    wrong = [(sample, int(guess), float(sure)) for sample, guess, sure in zip(samples, predicted, confidence) if guess != sample.label]
    return sorted(wrong, key=lambda mistake: -mistake[2])


def find_suspects(samples, scores, class_names):
    """[(path, folder's class, predicted class, confidence)] where the two differ, most confident first."""
    rows = [(str(sample.path), class_names[sample.label], class_names[guess], float(sure))
            for sample, guess, sure in zip(samples, scores.argmax(axis=1), scores.max(axis=1)) if guess != sample.label]
    return sorted(rows, key=lambda row: -row[3])


def draw_mistakes(path, mistakes, test_count, class_names, model, image_size, batch_size, limit=MAX_MISTAKES):
    """A contact sheet of the first `limit` mistakes, each photo under the heatmap of the class the model chose."""
    from .data import image_dataset
    from .heatmap import Explainer
    from .sheet import make_sheet

    shown = mistakes[:limit]
    heatmaps = []
    if shown:
        explainer = Explainer(model)
        predicted = iter([guess for _, guess, _ in shown])
        for images, _ in image_dataset([sample for sample, _, _ in shown], image_size, batch_size):
            heatmaps += explainer.heatmaps(images, [next(predicted) for _ in range(len(images))])
    rows = [(sample.path, f"{class_names[guess]}, is {class_names[sample.label]}", sure, heatmap)
            for (sample, guess, sure), heatmap in zip(shown, heatmaps)]
    title = (f"{len(mistakes)} of {test_count} test photos wrong" + (f"; the {len(shown)} most confident" if len(shown) < len(mistakes) else "")
             if mistakes else f"no mistakes on the {test_count} test photos")
    make_sheet(rows, path, title=title)
    return path


def write_suspects(path, suspects):
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as file:
        writer = csv.writer(file)
        writer.writerow(SUSPECTS_HEADER)
        writer.writerows((path, label, predicted, f"{confidence:.4f}") for path, label, predicted, confidence in suspects)
    return path


def unsure_table(scores, truth, thresholds=UNSURE_TABLE):
    """[(P, share labelled, accuracy of those labelled)]: what predict.py --unsure-below P does on these photos."""
    confidence, correct = scores.max(axis=1), scores.argmax(axis=1) == truth
    return [(threshold, *coverage(confidence, correct, threshold)) for threshold in thresholds]


def plot_unsure(png_path, scores, truth):
    from .reports import _pyplot
    plt = _pyplot()
    thresholds = np.round(np.arange(0.5, 0.995, 0.01), 2)
    rows = unsure_table(scores, truth, thresholds)
    figure, axis = plt.subplots(figsize=(6, 3.6))
    axis.plot(thresholds, [100 * share for _, share, _ in rows], label="photos labelled")
    axis.plot(thresholds, [100 * accuracy for _, _, accuracy in rows], label="accuracy of those labelled")
    axis.set(xlabel="--unsure-below P", ylabel="%", title="What labelling 'unsure' buys (Test_Set)", xlim=(0.5, 0.99))
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path


def plot_reliability(png_path, scores, truth):
    """The reliability diagram of the test photos: accuracy against confidence, bin by bin (the
    diagonal is a calibrated model), with each bin's share of the photos. Returns the ECE."""
    from .calibration import expected_calibration_error, reliability
    from .reports import _pyplot
    plt = _pyplot()
    ece = expected_calibration_error(scores, truth)
    rows = reliability(scores, truth)
    low = min(1 / scores.shape[1], *(row[0] for row in rows)) if rows else 0
    figure, axis = plt.subplots(figsize=(5, 4.2))
    axis.plot([low, 1], [low, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    axis.bar([(lo + hi) / 2 for lo, hi, *_ in rows], [accuracy for *_, accuracy in rows], width=1 / BINS * 0.9,
             color="#2a7", alpha=0.75, label="accuracy of the photos in the bin")
    for lo, hi, count, _, accuracy in rows:
        axis.annotate(str(count), ((lo + hi) / 2, accuracy), ha="center", va="bottom", fontsize=7, color="#555")
    axis.set(xlabel="confidence", ylabel="accuracy", xlim=(low, 1), ylim=(0, 1.05),
             title=f"Test_Set: expected calibration error {ece:.2%}")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return ece


def _percent(value):
    return "–" if math.isnan(value) else f"{value:.2%}"


def append_to_summary(md_path, mistake_count, test_count, suspects, training_count, table, ece=float("nan"), flagged=None):
    """The review's numbers at the end of summary.md, which reports.write_summary wrote."""
    strong = sum(confidence >= STRONG for *_, confidence in suspects)
    lines = ["## Review", "",
             f"- mistakes on Test_Set: {mistake_count} of {test_count}, most confident first with heatmaps: [mistakes.png](mistakes.png)",
             f"- suspected mislabels in Training_Set: {len(suspects)} of {training_count} photos "
             f"({strong} at {STRONG:.0%} confidence or more): [suspects.csv](suspects.csv)",
             "- the whole report on one page: [index.html](index.html)", "",
             "What `predict.py --unsure-below P` buys on Test_Set:", "",
             "| P | photos labelled | accuracy of those |", "| ---: | ---: | ---: |"]
    lines += [f"| {threshold:g} | {share:.1%} | {_percent(accuracy)} |" for threshold, share, accuracy in table]
    lines += ["", "![unsure](unsure.png)", "",
              f"Confidences on Test_Set: expected calibration error {_percent(ece)} ({BINS} bins; 0 is perfectly calibrated).", "",
              "![reliability](reliability.png)", ""]
    if flagged is not None:
        lines += [f"Labelled `unknown` by predict.py (not one of the classes), though all are: {flagged:.2%} of Test_Set.", ""]
    with open(md_path, "a", encoding="utf-8") as file:
        file.write("\n".join(lines))


def data_uri(png_path):
    """The picture as a data: URI, so the page needs no file beside it."""
    return "data:image/png;base64," + base64.b64encode(Path(png_path).read_bytes()).decode("ascii")


def thumbnail_uri(image_path, side=72):
    """A small JPEG of a photo as a data: URI; None if the photo can no longer be read."""
    from PIL import Image, ImageOps

    from .images import BadImage, open_image
    try:
        image = ImageOps.exif_transpose(open_image(image_path, draft_size=side))
        image = ImageOps.fit(image.convert("RGB"), (side, side), Image.Resampling.LANCZOS)
    except (BadImage, OSError, ValueError):
        return None
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image(png_path, alt):
    path = Path(png_path)
    if not path.is_file():
        return f'<p class="muted">({html.escape(path.name)} was not made)</p>'
    return f'<img src="{data_uri(path)}" alt="{html.escape(alt)}">'


def _table(header, rows, numeric=()):
    cells = "".join(f"<th>{html.escape(str(name))}</th>" for name in header)
    body = ["<tr>" + "".join(f'<td class="{"number" if index in numeric else ""}">{value}</td>'
                             for index, value in enumerate(row)) + "</tr>" for row in rows]
    return f"<table><tr>{cells}</tr>" + "".join(body) + "</table>"


def _display(path):
    return html.escape(str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def write_index(report_dir, facts, class_names, mistakes, test_count, suspects, training_count, table, ece=float("nan"),
                flagged=None):
    """reports/index.html: the whole run on one page, every picture embedded; each section's heading
    has an id to link to (index.html#mistakes, #suspects, #unsure...)."""
    report_dir = Path(report_dir)
    right = test_count - len(mistakes)
    strong = sum(confidence >= STRONG for *_, confidence in suspects)
    settings = _table(("", ""), [(html.escape(str(name)), html.escape(str(value))) for name, value in facts.items()])
    suspect_rows = []
    for path, label, predicted, confidence in suspects[:SUSPECTS_SHOWN]:
        thumb = thumbnail_uri(path)
        picture = f'<img src="{thumb}" alt="" width="72" height="72">' if thumb else ""
        suspect_rows.append((picture, f'<span class="path">{_display(path)}</span>', html.escape(label),
                             html.escape(predicted), f"{confidence:.1%}"))
    unsure_rows = [(f"{threshold:g}", f"{share:.1%}", _percent(accuracy)) for threshold, share, accuracy in table]
    page = render(
        "report.html", model=html.escape(str(facts.get("model", ""))), accuracy=f"{right / max(1, test_count):.2%}", right=right,
        test_count=test_count, classes=html.escape(", ".join(class_names)), settings=settings,
        learning_curves=_image(report_dir / "learning_curves.png", "learning curves: accuracy and loss per epoch"),
        confusion_matrix=_image(report_dir / "confusion_matrix.png", "confusion matrix on Test_Set"),
        max_mistakes=MAX_MISTAKES, mistakes=_image(report_dir / "mistakes.png", "the test photos the model got wrong, with heatmaps"),
        suspect_count=len(suspects), training_count=training_count, strong=strong, strong_share=f"{STRONG:.0%}",
        suspects_shown=min(SUSPECTS_SHOWN, len(suspects)),
        suspects=_table(("", "path", "folder", "model says", "confidence"), suspect_rows, numeric=(4,)),
        unsure_plot=_image(report_dir / "unsure.png", "share of photos labelled and their accuracy for each threshold P"),
        unsure_table=_table(("P", "photos labelled", "accuracy of those labelled"), unsure_rows, numeric=(0, 1, 2)),
        ece=_percent(ece), bins=BINS,
        reliability=_image(report_dir / "reliability.png", "reliability diagram: accuracy against confidence on Test_Set"),
        unknown="" if flagged is None else f"<p>The unknown score would label <strong>{flagged:.2%}</strong> of the test photos "
        "<em>unknown</em> (not one of the classes), though every one is: the price of answering <em>unknown</em> for photos of "
        "something else.</p>")
    (report_dir / "index.html").write_text(page, encoding="utf-8")
    return report_dir / "index.html"
