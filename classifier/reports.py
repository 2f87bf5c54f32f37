"""Pictures and a summary of a run: learning curves and the confusion matrix drawn with matplotlib
(headless Agg backend), and reports/summary.md, a page that reads well on GitHub."""
import csv

import numpy as np


def plot_learning_curves(log_path, png_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path) as file:
        rows = list(csv.DictReader(file))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("accuracy", "loss")):
        axis.plot(epochs, [float(row[metric]) for row in rows], "o-", label="training (augmented)")
        axis.plot(epochs, [float(row["val_" + metric]) for row in rows], "o-", label="Test_Set")
        axis.set(xlabel="epoch", ylabel=metric, title=metric.capitalize())
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_confusion_matrix(confusion, class_names, png_path, title="Test_Set"):
    """Counts in a grid, rows the true class and columns the predicted one; the diagonal is right."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.6, 4))
    axis.imshow(confusion, cmap="Blues", vmin=0, vmax=max(1, confusion.max()))
    for (row, column), count in np.ndenumerate(confusion):
        dark = count > confusion.max() / 2
        axis.text(column, row, f"{count}\n{count / max(1, confusion[row].sum()):.0%}", ha="center", va="center",
                  fontsize=12, color="white" if dark else "black")
    ticks = range(len(class_names))
    axis.set(xticks=ticks, yticks=ticks, xticklabels=class_names, yticklabels=class_names,
             xlabel="predicted", ylabel="true", title=f"{title} accuracy {np.trace(confusion) / max(1, confusion.sum()):.1%}")
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path


def write_summary(md_path, log_path, confusion, class_names, facts):
    """A short markdown page: the facts of the run (data, settings), the best epoch and the test result.

    facts: an ordered dict of name -> value, shown as a table.
    """
    with open(log_path) as file:
        scores = [float(row["val_accuracy"]) for row in csv.DictReader(file)]
    best = int(np.argmax(scores)) if scores else None  # the first best epoch is the one ModelCheckpoint kept
    right, total = int(np.trace(confusion)), int(confusion.sum())
    lines = ["# Training run", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in facts.items()]
    lines += ["", "## Result", "",
              f"- epochs run: {len(scores)}",
              f"- best epoch: {best + 1} (Test_Set accuracy {scores[best]:.2%}), kept in the model file" if scores else "- best epoch: none",
              f"- Test_Set accuracy of the kept model: **{right / max(1, total):.2%}** ({right} of {total} images)",
              "", "Confusion matrix (rows: true class, columns: predicted class):", "",
              "| true \\ predicted | " + " | ".join(class_names) + " |",
              "| --- |" + " ---: |" * len(class_names)]
    lines += [f"| {name} | " + " | ".join(str(count) for count in confusion[index]) + " |"
              for index, name in enumerate(class_names)]
    lines += ["", "![learning curves](learning_curves.png)", "", "![confusion matrix](confusion_matrix.png)", ""]
    with open(md_path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines))
    return md_path
