"""The report's pictures: learning curves, confusion matrix, unsure curve and reliability diagram drawn
with matplotlib (headless Agg backend), and mistakes.png, a contact sheet (sheet.py)."""
import numpy as np

from ..calibration import BINS, reliability
from ..config import counted
from . import MAX_MISTAKES, best_epoch, read_log, unsure_table

LABEL_INCHES_PER_CHARACTER = 0.09   # about a character of a tick label at matplotlib's default 10 pt


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(figure, png_path, dpi=100):
    figure.tight_layout()
    figure.savefig(png_path, dpi=dpi)
    pyplot().close(figure)
    return png_path


def plot_learning_curves(log_path, png_path):
    rows = read_log(log_path)
    epochs = [int(row["epoch"]) for row in rows]
    kept = best_epoch(rows)
    figure, axes = pyplot().subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("accuracy", "loss")):
        axis.plot(epochs, [float(row[metric]) for row in rows], "o-", label="training (augmented)")
        if rows and rows[0].get("val_" + metric):
            axis.plot(epochs, [float(row["val_" + metric]) for row in rows], "o-", label="validation")
        if kept is not None:
            axis.axvline(kept, color="grey", linestyle="--", linewidth=1, label=f"kept: epoch {kept}")
        axis.set(xlabel="epoch", ylabel=metric, title=metric.capitalize())
        axis.xaxis.get_major_locator().set_params(integer=True)  # no epoch 1.5
        axis.grid(alpha=0.3)
        axis.legend()
    return _save(figure, png_path)


def confusion_figure(confusion, class_names, title="Test_Set"):
    """Counts in a grid, rows the true class and columns the predicted one; the diagonal is right."""
    longest = max(map(len, class_names))
    rotate = longest > 8  # long names side by side would run into each other
    # The grid grows with the classes; the figure grows with the names too, so that the tick labels
    # leave room for the axis labels ("true" went off the left edge with 27-letter names).
    grid = 3 + 0.8 * len(class_names)
    label = LABEL_INCHES_PER_CHARACTER * max(0, longest - 8)  # the size that always served short names stays
    figure, axis = pyplot().subplots(figsize=(grid + 0.6 + label, grid + (label / 2 if rotate else 0)))
    axis.imshow(confusion, cmap="Blues", vmin=0, vmax=max(1, confusion.max()))
    for (row, column), count in np.ndenumerate(confusion):
        dark = count > confusion.max() / 2
        axis.text(column, row, f"{count}\n{count / max(1, confusion[row].sum()):.0%}", ha="center", va="center",
                  fontsize=12, color="white" if dark else "black")
    ticks = range(len(class_names))
    axis.set(xticks=ticks, yticks=ticks, xticklabels=class_names, yticklabels=class_names,
             xlabel="predicted", ylabel="true", title=f"{title} accuracy {np.trace(confusion) / max(1, confusion.sum()):.1%}")
    if rotate:
        pyplot().setp(axis.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    figure.tight_layout()
    return figure


def plot_confusion_matrix(confusion, class_names, png_path, title="Test_Set"):
    return _save(confusion_figure(confusion, class_names, title), png_path)


def draw_mistakes(png_path, result, limit=MAX_MISTAKES):
    """A contact sheet of the first `limit` mistakes, each photo under the heatmap the caller computed
    (of the class the model chose), captioned with both classes in full."""
    from ..sheet import make_sheet

    shown, names = result.mistakes[:limit], result.class_names
    rows = [(mistake.sample.path, mistake_caption(mistake, names), mistake.confidence, mistake.heatmap) for mistake in shown]
    count, total = len(result.mistakes), result.test_count
    title = (f"{count} of {counted(total, 'test photo')} wrong" + (f"; the {len(shown)} most confident" if len(shown) < count else "")
             if count else f"no mistakes on the {counted(total, 'test photo')}")
    make_sheet(rows, png_path, title=title)
    return png_path


def mistake_caption(mistake, class_names):
    """What the model said (beside its confidence), and under it what the photo is: both in full, as
    sheet.py wraps a long name rather than cut it."""
    return f"{class_names[mistake.predicted]}\nis {class_names[mistake.sample.label]}"


def plot_unsure(png_path, scores, truth):
    thresholds = np.round(np.arange(0.5, 0.995, 0.01), 2)
    rows = unsure_table(scores, truth, thresholds)
    figure, axis = pyplot().subplots(figsize=(6, 3.6))
    axis.plot(thresholds, [100 * share for _, share, _ in rows], label="photos labelled")
    axis.plot(thresholds, [100 * accuracy for _, _, accuracy in rows], label="accuracy of those labelled")
    axis.set(xlabel="--unsure-below P", ylabel="%", title="What labelling 'unsure' buys (Test_Set)", xlim=(0.5, 0.99))
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left")
    return _save(figure, png_path)


def plot_reliability(png_path, scores, truth, ece):
    """The reliability diagram of the test photos: accuracy against confidence, bin by bin (the
    diagonal is a calibrated model), with each bin's count of photos; ece in the title."""
    rows = reliability(scores, truth)
    low = min(1 / scores.shape[1], *(row[0] for row in rows)) if rows else 0
    figure, axis = pyplot().subplots(figsize=(5, 4.2))
    axis.plot([low, 1], [low, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    axis.bar([(lo + hi) / 2 for lo, hi, *_ in rows], [accuracy for *_, accuracy in rows], width=1 / BINS * 0.9,
             color="#2a7", alpha=0.75, label="accuracy of the photos in the bin")
    for lo, hi, count, _, accuracy in rows:
        axis.annotate(str(count), ((lo + hi) / 2, accuracy), ha="center", va="bottom", fontsize=7, color="#555")
    axis.set(xlabel="confidence", ylabel="accuracy", xlim=(low, 1), ylim=(0, 1.05),
             title=f"Test_Set: expected calibration error {ece:.2%}")
    axis.legend(loc="upper left", fontsize=8)
    return _save(figure, png_path)
