"""predict.py's output formats: one writer each, all fed the same Prediction objects.

A writer is made before any photo is labelled (so a path it cannot write is refused at once),
gets each prediction with add(), and finishes with close(). WRITERS maps the names to them.
"""
import csv
import json
import sys
from pathlib import Path

from .config import UsageError, counted

HEADER = ("path", "label", "confidence", "unknown_score")


def _row(prediction):
    return str(prediction.path), prediction.label, f"{prediction.confidence:.4f}"


def _unknown_score(prediction):
    """The unknown score to 4 decimals, or None for a model that has none (open_set.py)."""
    return None if prediction.unknown_score is None else round(prediction.unknown_score, 4)


def json_fields(prediction):
    """One photo as predict.py --json (and serve.py's API) gives it, numbers to 4 decimals as the lines print them."""
    path, label, confidence = _row(prediction)
    probabilities = {name: round(float(value), 4) for name, value in zip(prediction.class_names, prediction.probabilities)}
    return {"path": path, "label": label, "confidence": float(confidence), "probabilities": probabilities,
            "unknown_score": _unknown_score(prediction)}


class Lines:
    """Tab-separated `path  label  confidence` lines on stdout, printed as each photo is labelled."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        if hasattr(self.stream, "reconfigure"):  # a file name that is not UTF-8 is printed as its bytes, as ls does
            self.stream.reconfigure(errors="surrogateescape")

    def add(self, prediction):
        print("\t".join(_row(prediction)), file=self.stream, flush=True)

    def close(self):
        pass


class Json:
    """One JSON list on stdout, one photo per line (valid JSON that greps well), with every class's probability."""

    def __init__(self, stream=None):
        self.stream, self.objects = stream or sys.stdout, []

    def add(self, prediction):
        self.objects.append(json.dumps(json_fields(prediction)))

    def close(self):
        print("[" + ",\n ".join(self.objects) + "]", file=self.stream)


class Csv:
    """A CSV file with the header path,label,confidence,unknown_score (empty for a model without
    that score); each row is written as its photo is labelled."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.file = open(self.path, "w", newline="", encoding="utf-8", errors="surrogateescape")
        except OSError as error:
            raise UsageError(f"--csv {path}: cannot write it ({error.strerror}); pass a file path in an existing, writable folder")
        self.writer = csv.writer(self.file)
        self.writer.writerow(HEADER)

    def add(self, prediction):
        score = _unknown_score(prediction)
        self.writer.writerow((*_row(prediction), "" if score is None else f"{score:.4f}"))

    def close(self):
        self.file.close()


class Sheet:
    """A contact sheet (sheet.py): every photo with its label (and its heatmap, if it has one), drawn
    when all are labelled. unsure_below: the confidence under which a photo is framed as doubtful."""

    def __init__(self, path, unsure_below=None):
        from .sheet import check_sheet_path
        check_sheet_path(path)
        self.path, self.rows, self.unsure_below = path, [], unsure_below

    def add(self, prediction):
        self.rows.append((*_row(prediction), prediction.heatmap))

    def close(self):
        if self.rows:
            from .sheet import LOW_CONFIDENCE, make_sheet
            count = make_sheet(self.rows, self.path, doubt_below=self.unsure_below or LOW_CONFIDENCE)
            print(f"contact sheet of {counted(count, 'image')}: {self.path}", file=sys.stderr)


def heatmap_caption(prediction):
    """What a heatmap picture says under the photo: the label and its confidence, and the class the
    map is of (the most probable one) when the label is unsure or unknown."""
    top = prediction.class_names[prediction.index]
    label = top if prediction.label == top else f"{prediction.label} (heatmap of {top})"
    return f"{label}  {prediction.confidence:.1%}"


class Heatmaps:
    """FOLDER/<photo's file name>.png for each photo: the photo under its heatmap (heatmap.py), above
    its label and confidence.
    The folder is made (or checked) at once, before any photo is read."""

    def __init__(self, folder):
        self.folder, self.used, self.count = Path(folder), set(), 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise UsageError(f"--heatmaps {folder}: cannot write there ({error.strerror or error}); pass a folder that "
                             "exists or can be made, and is writable")

    def add(self, prediction):
        from .heatmap import save_overlay
        from .images import BadImage
        if prediction.heatmap is None:
            return
        name = Path(prediction.path).name
        target, number = self.folder / f"{name}.png", 1
        while target.name in self.used:  # two photos of the same name in different folders
            number += 1
            target = self.folder / f"{name}-{number}.png"
        self.used.add(target.name)
        try:
            save_overlay(prediction.path, prediction.heatmap, target, caption=heatmap_caption(prediction))
        except BadImage as error:  # changed or removed since it was labelled
            print(f"warning: no heatmap for {error}", file=sys.stderr)
            return
        except OSError as error:
            raise UsageError(f"cannot write the heatmap {target} ({error.strerror or error}): free some space or pass another --heatmaps folder")
        self.count += 1

    def close(self):
        if self.count:
            print(f"heatmaps of {counted(self.count, 'image')}: {self.folder}", file=sys.stderr)


WRITERS = {"lines": Lines, "json": Json, "csv": Csv, "sheet": Sheet, "heatmaps": Heatmaps}
