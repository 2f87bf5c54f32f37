"""What a training run leaves in OUTPUT/reports/, written by write_report(folder, result) from one Result:

- learning_curves.png, confusion_matrix.png: accuracy and loss per epoch; Test_Set counts (plots.py);
- mistakes.png: the Test_Set photos the kept model got wrong, most confident first, each under the
  heatmap of the class it wrongly chose, at most MAX_MISTAKES of them;
- suspects.csv (path,label,predicted,confidence): the training photos (Training_Set, the validation
  part included) whose folder the model disagrees with, most confident first: candidates for
  mislabels. The model was trained on most of them, so a photo it still puts in another class with
  confidence is one it could not fit: good evidence of a wrong folder. Out-of-fold scores (each photo
  judged by a model that never saw it) would find more, but need k extra trainings;
- unsure.png: what predict.py --unsure-below P buys on the test photos, for P from 0.5 to 0.99;
- reliability.png: whether the confidences mean what they say on the test photos (calibration.py);
- summary.md (summary.py): the run on a page that reads well on GitHub;
- index.html (index.py): the whole report on one page, every picture embedded.

The report only draws and writes. The training side fills the Result and runs the model where that
is needed (the Test_Set scores, the mistakes' heatmaps), so the report works from numbers alone.
Importing this package loads neither matplotlib nor TensorFlow: training reads the log helpers below.
"""
import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

MAX_MISTAKES = 48                                      # thumbnails in mistakes.png, and rows in index.html's list
STRONG = 0.9                                           # a suspect at this confidence or more is counted as strong
UNSURE_TABLE = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)   # the thresholds the report's tables list
SUSPECTS_HEADER = ("path", "label", "predicted", "confidence")


@dataclass
class Disagreement:
    """A photo the model puts in another class than its folder's: a mistake on Test_Set, a suspect in Training_Set."""
    sample: object            # data.Sample: the photo's path, and its folder's class (label)
    predicted: int            # the class the model chose
    confidence: float         # its probability
    heatmap: object = None    # 2-D, 0-1 (heatmap.py): where the evidence for `predicted` lay; mistakes.png draws it


@dataclass
class Result:
    """Everything a run's report shows. The fields are what training measured; the properties follow from them."""
    class_names: list
    log_path: Path                 # training_log.csv, one row per epoch
    facts: dict                    # the run's data and settings, name -> value, shown as a table
    test_truth: np.ndarray         # the class of each Test_Set photo
    test_scores: np.ndarray        # the kept model's probabilities on them, calibrated
    mistakes: list                 # [Disagreement] on Test_Set, most confident first; the first MAX_MISTAKES have heatmaps
    suspects: list                 # [Disagreement] in Training_Set, most confident first
    training_count: int            # the Training_Set photos scored for suspects
    unknown_flagged: float = None  # the share of Test_Set the unknown score flags; None: no unknown score

    @property
    def test_count(self):
        return len(self.test_truth)

    @cached_property
    def confusion(self):
        from ..prediction import confusion_matrix
        return confusion_matrix(self.test_truth, self.test_scores.argmax(axis=1), len(self.class_names))

    @cached_property
    def ece(self):
        from ..calibration import expected_calibration_error
        return expected_calibration_error(self.test_scores, self.test_truth)

    @cached_property
    def unsure_table(self):
        return unsure_table(self.test_scores, self.test_truth)

    @property
    def strong_suspects(self):
        return sum(suspect.confidence >= STRONG for suspect in self.suspects)


def write_report(folder, result):
    """Every file of the report (the module's docstring) into folder; returns folder."""
    from . import index, plots, summary

    folder = Path(folder)
    plots.plot_learning_curves(result.log_path, folder / "learning_curves.png")
    plots.plot_confusion_matrix(result.confusion, result.class_names, folder / "confusion_matrix.png")
    plots.draw_mistakes(folder / "mistakes.png", result)
    write_suspects(folder / "suspects.csv", result)
    plots.plot_unsure(folder / "unsure.png", result.test_scores, result.test_truth)
    plots.plot_reliability(folder / "reliability.png", result.test_scores, result.test_truth, result.ece)
    summary.write_summary(folder / "summary.md", result)
    index.write_index(folder / "index.html", result)
    return folder


def disagreements(samples, scores):
    """[Disagreement] of the samples whose most probable class (scores: probabilities) is not their label, most confident first."""
    predicted, confidence = scores.argmax(axis=1), scores.max(axis=1)
    found = [Disagreement(sample, int(guess), float(sure)) for sample, guess, sure in zip(samples, predicted, confidence)
             if guess != sample.label]
    return sorted(found, key=lambda disagreement: -disagreement.confidence)


def write_suspects(path, result):
    names = result.class_names
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as file:
        writer = csv.writer(file)
        writer.writerow(SUSPECTS_HEADER)
        writer.writerows((str(suspect.sample.path), names[suspect.sample.label], names[suspect.predicted], f"{suspect.confidence:.4f}")
                         for suspect in result.suspects)
    return path


def unsure_table(scores, truth, thresholds=UNSURE_TABLE):
    """[(P, share labelled, accuracy of those labelled)]: what predict.py --unsure-below P does on these photos."""
    from ..prediction import coverage
    confidence, correct = scores.max(axis=1), scores.argmax(axis=1) == truth
    return [(threshold, *coverage(confidence, correct, threshold)) for threshold in thresholds]


# --- The training log, which training.py reads too (KeepBest, --resume) ---------------------------

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
