"""reports/summary.md: the run on a page that reads well on GitHub: its facts (data, settings), the
epoch kept, the test result, then the review (mistakes, suspects, unsure, calibration)."""
import math

from ..calibration import BINS
from . import STRONG, best_epoch, read_log


def percent(value):
    return "–" if math.isnan(value) else f"{value:.2%}"


def write_summary(md_path, result):
    rows = read_log(result.log_path)
    kept = best_epoch(rows)
    validation = {int(row["epoch"]): float(row["val_accuracy"]) for row in rows if row.get("val_accuracy")}
    confusion, names = result.confusion, result.class_names
    right, total = int(confusion.trace()), int(confusion.sum())
    lines = ["# Training run", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in result.facts.items()]
    kept_line = f"- epoch kept: {kept}" + (f" (validation accuracy {validation[kept]:.2%})" if kept in validation else " (the last)")
    lines += ["", "## Result", "",
              f"- epochs run: {len(rows)}",
              kept_line if kept is not None else "- epoch kept: none",
              f"- Test_Set accuracy of the kept model, measured once: **{right / max(1, total):.2%}** ({right} of {total} images)",
              "", "Confusion matrix (rows: true class, columns: predicted class):", "",
              "| true \\ predicted | " + " | ".join(names) + " |",
              "| --- |" + " ---: |" * len(names)]
    lines += [f"| {name} | " + " | ".join(str(count) for count in confusion[index]) + " |" for index, name in enumerate(names)]
    lines += ["", "![learning curves](learning_curves.png)", "", "![confusion matrix](confusion_matrix.png)"]
    lines += review_lines(result)
    with open(md_path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines))
    return md_path


def review_lines(result):
    lines = ["## Review", "",
             f"- mistakes on Test_Set: {len(result.mistakes)} of {result.test_count}, most confident first with heatmaps: "
             "[mistakes.png](mistakes.png)",
             f"- suspected mislabels in Training_Set: {len(result.suspects)} of {result.training_count} photos "
             f"({result.strong_suspects} at {STRONG:.0%} confidence or more): [suspects.csv](suspects.csv)",
             "- the whole report on one page: [index.html](index.html)", "",
             "What `predict.py --unsure-below P` buys on Test_Set:", "",
             "| P | photos labelled | accuracy of those |", "| ---: | ---: | ---: |"]
    lines += [f"| {threshold:g} | {share:.1%} | {percent(accuracy)} |" for threshold, share, accuracy in result.unsure_table]
    lines += ["", "![unsure](unsure.png)", "",
              f"Confidences on Test_Set: expected calibration error {percent(result.ece)} ({BINS} bins; 0 is perfectly calibrated).", "",
              "![reliability](reliability.png)", ""]
    if result.unknown_flagged is not None:
        lines += [f"Labelled `unknown` by predict.py (not one of the classes), though all are: {result.unknown_flagged:.2%} of Test_Set.", ""]
    return lines
