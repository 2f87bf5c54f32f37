"""Labelling photos with a trained model, and scoring it on folders of labelled photos.

Predictions are data: a Prediction holds a photo's path and one probability per class; the
output formats (writers.py) only read them. Two engines give the same answers: a fresh
model.tflite beside model.h5 runs in LiteRT without TensorFlow (compiled.py: each photo decoded
once by Pillow on a thread pool while the interpreter labels the previous chunk); else the Keras
network of model.h5, with photos read exactly as in training (data.py): checked on a thread pool
while the model labels the previous chunk, then decoded by tf.data.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import artifacts, import_tensorflow
from .compiled import CompiledModel, load_fresh, read_for_model
from .config import UsageError, counted
from .data import Sample, class_folders, image_dataset
from .images import BadImage, check_images, find_images

CHUNK_BATCHES = 8    # photos are checked this many batches ahead of the model
UNSURE = "unsure"    # the label of a photo whose confidence is below --unsure-below
UNKNOWN = "unknown"  # the label of a photo unlike the training photos of every class (open_set.py)


@dataclass
class Prediction:
    path: Path
    probabilities: np.ndarray   # one per class, in class_names order
    class_names: list
    heatmap: np.ndarray | None = None   # where the evidence for the class lies, 0-1 (predict.py --heatmaps)
    unsure_below: float = 0.0           # a lower confidence is labelled UNSURE (predict.py --unsure-below)
    unknown_score: float | None = None  # how unlike the training photos it is (open_set.py); None: the model has no score
    unknown_above: float | None = None  # a higher score is labelled UNKNOWN (predict.py --unknown-above); None: never

    @property
    def index(self):
        """The most probable class, even when the label is UNSURE or UNKNOWN."""
        return int(np.argmax(self.probabilities))

    @property
    def unknown(self):
        """Whether the photo is unlike every class's training photos: not one of the classes."""
        return None not in (self.unknown_score, self.unknown_above) and self.unknown_score > self.unknown_above

    @property
    def label(self):
        if self.unknown:
            return UNKNOWN
        return UNSURE if self.confidence < self.unsure_below else self.class_names[self.index]

    @property
    def confidence(self):
        """The probability of the most probable class (the label, unless that is UNSURE or UNKNOWN)."""
        return float(self.probabilities[self.index])


def load_classifier(model_path, weights_path=None, class_names=None, compiled=True):
    """(model, its ModelInfo); says on stderr which files it loaded. The model is the compiled.CompiledModel
    of a fresh model.tflite beside model.h5 when compiled is True (no TensorFlow is imported then),
    else model.h5's Keras network. class_names: for a Keras 2 model.h5, which has no compiled form."""
    weights = weights_path or artifacts.weights_beside(model_path)
    artifacts.check_files(model_path, weights)
    if compiled and class_names is None:
        model, _ = load_fresh(model_path, weights)
        if model is not None:
            print(f"Model: {model_path} (weights: {weights}); classes: {', '.join(model.info.class_names)}; "
                  f"run by LiteRT from {model.path.name}", file=sys.stderr)
            return model, model.info
    artifacts.check_readable(model_path, weights)  # before TensorFlow loads: a bad file is said at once
    import_tensorflow()
    model, info = artifacts.load(model_path, weights_path, class_names)
    print(f"Model: {model_path} (weights: {weights}); classes: {', '.join(info.class_names)}", file=sys.stderr)
    return model, info


def inference_model(model, info):
    """What labels photos: model.h5's network, its probabilities calibrated by info.temperature, and
    the unknown score (open_set.py) as a second output when model.h5 stores a scorer; the network
    itself when neither applies. The exports write this model, so every format gives what
    predict.py gives."""
    scorer = info.scorer
    if isinstance(model, CompiledModel) or scorer is None and info.temperature == 1:  # compiled: it is one already
        return model
    import keras

    from .calibration import with_temperature
    from .open_set import through, unknown_score

    inputs = keras.Input(shape=model.input_shape[1:], name="images")
    probabilities, features = through(model, inputs)
    outputs = [with_temperature(probabilities, info.temperature)] + ([unknown_score(features, scorer)] if scorer else [])
    return keras.Model(inputs, outputs if scorer else outputs[0], name=f"{model.name}_inference")


def probabilities(outputs):
    """The model's outputs as one probability per class. A Dense(1) sigmoid head (models saved by
    earlier versions and by Keras 2 scripts) gives the probability of the second class."""
    outputs = np.asarray(outputs, dtype=float)
    return np.concatenate([1 - outputs, outputs], axis=1) if outputs.shape[1] == 1 else outputs


def predict_batch(model, images, tta=False, eager=False):
    """(one probability per class, unknown score or None) for each image of the batch; model is an
    inference_model, or a bare network (no unknown score). Test-time augmentation (tta): the mean
    of the photo's and its mirror image's, as training showed the model both (RandomFlip).
    eager: call the model directly instead of predict_on_batch, which first traces a graph of it:
    that costs about a second, and pays back only over several batches."""
    compiled = isinstance(model, CompiledModel)

    def run(batch):
        if compiled:
            return model(batch)
        outputs = model(batch, training=False) if eager else model.predict_on_batch(batch)
        if isinstance(outputs, (list, tuple)):  # inference_model: [probabilities, unknown score]
            return probabilities(outputs[0]), np.asarray(outputs[1], dtype=float)[:, 0]
        return probabilities(outputs), None

    scores, unknown = run(images)
    if tta:  # (N, height, width, 3): flip the width
        mirror, mirror_unknown = run(np.asarray(images)[:, :, ::-1] if compiled else import_tensorflow().reverse(images, axis=[2]))
        scores, unknown = (scores + mirror) / 2, None if unknown is None else (unknown + mirror_unknown) / 2
    return scores, unknown


def predict_files(model, info, paths, batch_size, tta=False, explainer=None, unsure_below=0.0, unknown_above="model"):
    """Yield a Prediction for each readable file, or its BadImage, in the order of paths.

    model: the network of model.h5 (load_classifier). tta: average with the mirror image
    (predict_batch); explainer: a heatmap.Explainer, whose map of the predicted class each
    Prediction carries; unsure_below: see Prediction; unknown_above: the unknown score's threshold,
    "model" for the one stored in model.h5, None to label every photo with a class.
    """
    labels = Labels(info.class_names, unsure_below, unknown_threshold(info, unknown_above))
    if isinstance(model, CompiledModel):
        yield from _label_compiled(model, paths, batch_size, tta, labels)
        return
    model = inference_model(model, info)
    chunk_size = batch_size * CHUNK_BATCHES
    chunks = [paths[start:start + chunk_size] for start in range(0, len(paths), chunk_size)]
    with ThreadPoolExecutor(1) as reader:  # checks the next chunk while the model labels this one
        # keep_pixels: a photo the check decoded is not decoded again (images.check_photo).
        pending = reader.submit(list, check_images(chunks[0], info.image_size, keep_pixels=True)) if chunks else None
        for index in range(len(chunks)):
            checked = pending.result()
            if index + 1 < len(chunks):
                pending = reader.submit(list, check_images(chunks[index + 1], info.image_size, keep_pixels=True))
            yield from _label_chunk(model, info, checked, batch_size, tta, explainer, labels, eager=len(paths) <= batch_size)


@dataclass
class Labels:
    """How predictions become labels: the class names and the two thresholds of Prediction."""
    class_names: list
    unsure_below: float = 0.0
    unknown_above: float | None = None

    def __call__(self, path, probabilities, unknown_score=None, heatmap=None):
        return Prediction(path, probabilities, self.class_names, heatmap, self.unsure_below,
                          None if unknown_score is None else float(unknown_score), self.unknown_above)


def unknown_threshold(info, asked="model"):
    """The unknown score's threshold: the one model.h5 stores ("model"), a number given, or None (off)."""
    if asked is None or not info.open_set:  # off, or a model without the score
        return None
    return float(info.open_set["threshold"]) if asked == "model" else float(asked)


def _label_chunk(model, info, checked, batch_size, tta, explainer, labels, eager):
    good = [Sample(path, 0, result) for path, result in checked if not isinstance(result, BadImage)]
    rows, unknown, maps = [], [], []
    for images, _ in image_dataset(good, info.image_size, batch_size) if good else []:
        scores, scores_unknown = predict_batch(model, images, tta, eager)
        rows.append(scores)
        unknown += [None] * len(scores) if scores_unknown is None else list(scores_unknown)
        if explainer is not None:
            maps += explainer.heatmaps(images, scores.argmax(axis=1))
    rows, unknown, maps = iter(np.concatenate(rows) if rows else []), iter(unknown), iter(maps)
    for path, result in checked:
        if isinstance(result, BadImage):
            yield result
        else:
            yield labels(path, next(rows), next(unknown), next(maps, None))


def _label_compiled(model, paths, batch_size, tta, labels):
    """predict_files for a CompiledModel: each photo read once (compiled.read_for_model) on a thread
    pool, a chunk ahead of the interpreter; the chunk's photos labelled batch by batch, in order."""
    def read(path):
        try:
            return read_for_model(path, model.info.image_size)
        except BadImage as bad:
            return bad

    chunk_size = batch_size * CHUNK_BATCHES
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        pending = [pool.submit(read, path) for path in paths[:chunk_size]]
        for start in range(0, len(paths), chunk_size):
            read_now = [future.result() for future in pending]
            pending = [pool.submit(read, path) for path in paths[start + chunk_size:start + 2 * chunk_size]]
            good = [pixels for pixels in read_now if not isinstance(pixels, BadImage)]
            rows, unknown = [], []
            for first in range(0, len(good), batch_size):
                scores, scores_unknown = predict_batch(model, np.stack(good[first:first + batch_size]).astype(np.float32), tta)
                rows += list(scores)
                unknown += [None] * len(scores) if scores_unknown is None else list(scores_unknown)
            rows, unknown = iter(rows), iter(unknown)
            for path, pixels in zip(paths[start:start + chunk_size], read_now):
                yield pixels if isinstance(pixels, BadImage) else labels(path, next(rows), next(unknown))


def labelled_photos(folder, class_names):
    """(paths, true class indices) of the photos in folder/<class>/, for every class of the model."""
    found = class_folders(folder)
    if found != sorted(class_names):
        raise UsageError(f"{folder} must hold one folder per class, named {', '.join(class_names)} (found: {', '.join(found) or 'none'})")
    paths, truth = [], []
    for label, name in enumerate(class_names):
        images, _ = find_images([Path(folder, name)])
        paths += images
        truth += [label] * len(images)
    if not paths:
        raise UsageError(f"no images found in the class folders of {folder}")
    return paths, truth


def evaluate(model, info, folder, batch_size, tta=False, unknown_above="model"):
    """The confusion matrix on FOLDER/<class>/ photos, by each photo's most probable class (a photo
    flagged unknown counts too). Returns (confusion, predictions, whether each prediction is right,
    the BadImage of each unreadable file)."""
    paths, truth = labelled_photos(folder, info.class_names)
    count = len(info.class_names)
    confusion = np.zeros((count, count), dtype=int)  # rows: true class, columns: predicted class
    predictions, right, bad = [], [], []
    for result, actual in zip(predict_files(model, info, paths, batch_size, tta, unknown_above=unknown_above), truth):
        if isinstance(result, BadImage):
            bad.append(result)
            continue
        confusion[actual, result.index] += 1
        predictions.append(result)
        right.append(result.index == actual)
    return confusion, predictions, right, bad


def coverage(confidences, correct, threshold):
    """What --unsure-below threshold buys: (share of photos labelled, accuracy of those labelled);
    a photo is labelled when its confidence is at least threshold. Accuracy is nan when none is."""
    labelled = np.asarray(confidences) >= threshold
    accuracy = float(np.asarray(correct)[labelled].mean()) if labelled.any() else float("nan")
    return float(labelled.mean()) if len(labelled) else 0.0, accuracy


def confusion_matrix(truth, predicted, count):
    """Rows: true class, columns: predicted class."""
    confusion = np.zeros((count, count), dtype=int)
    np.add.at(confusion, (np.asarray(truth, dtype=int), np.asarray(predicted, dtype=int)), 1)
    return confusion


def format_report(confusion, class_names):
    """Accuracy, per-class precision and recall, and the confusion matrix, as text."""
    total = confusion.sum()
    width = max(12, *(len(name) + 2 for name in class_names))
    lines = [f"accuracy: {np.trace(confusion) / max(1, total):.2%} on {counted(total, 'image')}", "",
             f"{'class':<{width}}{'precision':>10}{'recall':>10}{'images':>8}"]
    for index, name in enumerate(class_names):
        precision = confusion[index, index] / max(1, confusion[:, index].sum())
        recall = confusion[index, index] / max(1, confusion[index].sum())
        lines.append(f"{name:<{width}}{precision:>10.2%}{recall:>10.2%}{confusion[index].sum():>8}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * width + "".join(f"{name:>{width}}" for name in class_names)]
    for index, name in enumerate(class_names):
        lines.append(f"{name:<{width}}" + "".join(f"{count:>{width}}" for count in confusion[index]))
    return "\n".join(lines)
