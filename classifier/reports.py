"""Pictures and a summary of a run: learning curves and the confusion matrix drawn with matplotlib
(headless Agg backend), and reports/summary.md, a page that reads well on GitHub."""
import csv

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_log(log_path):
    with open(log_path) as file:
        return list(csv.DictReader(file))


def epoch_score(row):
    """How an epoch ranks (a row of the training log, or Keras's logs): the validation accuracy,
    ties going to the lower validation loss. A few held-out photos give many ties: with 5, every
    epoch from the second on may score 100 %, and the first of them is the least trained."""
    return float(row["val_accuracy"]), -float(row["val_loss"])


def best_epoch(rows):
    """The epoch (from 1) the run kept (training.KeepBest): the best epoch_score; the last one when nothing was held out."""
    scored = [row for row in rows if row.get("val_accuracy")]
    return int(max(scored, key=epoch_score)["epoch"]) if scored else (int(rows[-1]["epoch"]) if rows else None)


def plot_learning_curves(log_path, png_path):
    plt = _pyplot()
    rows = read_log(log_path)
    epochs = [int(row["epoch"]) for row in rows]
    kept = best_epoch(rows)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
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
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path


def plot_confusion_matrix(confusion, class_names, png_path, title="Test_Set"):
    """Counts in a grid, rows the true class and columns the predicted one; the diagonal is right."""
    plt = _pyplot()
    size = 3 + 0.8 * len(class_names)
    figure, axis = plt.subplots(figsize=(size + 0.6, size))
    axis.imshow(confusion, cmap="Blues", vmin=0, vmax=max(1, confusion.max()))
    for (row, column), count in np.ndenumerate(confusion):
        dark = count > confusion.max() / 2
        axis.text(column, row, f"{count}\n{count / max(1, confusion[row].sum()):.0%}", ha="center", va="center",
                  fontsize=12, color="white" if dark else "black")
    ticks = range(len(class_names))
    axis.set(xticks=ticks, yticks=ticks, xticklabels=class_names, yticklabels=class_names,
             xlabel="predicted", ylabel="true", title=f"{title} accuracy {np.trace(confusion) / max(1, confusion.sum()):.1%}")
    if max(map(len, class_names)) > 8:  # long names side by side would run into each other and push the axis label out
        plt.setp(axis.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path


def write_summary(md_path, log_path, confusion, class_names, facts):
    """A short markdown page: the facts of the run (data, settings), the epoch kept and the test result.

    facts: an ordered dict of name -> value, shown as a table.
    """
    rows = read_log(log_path)
    kept = best_epoch(rows)
    validation = {int(row["epoch"]): float(row["val_accuracy"]) for row in rows if row.get("val_accuracy")}
    right, total = int(np.trace(confusion)), int(confusion.sum())
    lines = ["# Training run", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in facts.items()]
    kept_line = f"- epoch kept: {kept}" + (f" (validation accuracy {validation[kept]:.2%})" if kept in validation else " (the last)")
    lines += ["", "## Result", "",
              f"- epochs run: {len(rows)}",
              kept_line if kept is not None else "- epoch kept: none",
              f"- Test_Set accuracy of the kept model, measured once: **{right / max(1, total):.2%}** ({right} of {total} images)",
              "", "Confusion matrix (rows: true class, columns: predicted class):", "",
              "| true \\ predicted | " + " | ".join(class_names) + " |",
              "| --- |" + " ---: |" * len(class_names)]
    lines += [f"| {name} | " + " | ".join(str(count) for count in confusion[index]) + " |"
              for index, name in enumerate(class_names)]
    lines += ["", "![learning curves](learning_curves.png)", "", "![confusion matrix](confusion_matrix.png)", ""]
    with open(md_path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines))
    return md_path


def write_all(report_dir, log_path, confusion, class_names, facts):
    """Every report of a finished run, into report_dir; returns report_dir."""
    plot_learning_curves(log_path, report_dir / "learning_curves.png")
    plot_confusion_matrix(confusion, class_names, report_dir / "confusion_matrix.png")
    write_summary(report_dir / "summary.md", log_path, confusion, class_names, facts)
    return report_dir
