"""Labelling photos with a trained model, and evaluating it on a folder of labelled photos.

Photos are read with Pillow on a thread pool (decoding runs outside the GIL) while the model
labels the previous batch, and are resized the way the training photos were (config.INTERPOLATION).
"""
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import artifacts, import_tensorflow
from .config import UsageError
from .data import class_folders
from .images import BadImage, find_images, load_image


def load_classifier(model_path, weights_path, class_names=None):
    import_tensorflow()
    return artifacts.load(model_path, weights_path, class_names)


def label_of(probability, class_names):
    """The sigmoid output is the probability of the second class (labels follow sorted folder names)."""
    if probability >= 0.5:
        return class_names[1], float(probability)
    return class_names[0], 1.0 - float(probability)


def predict_files(model, image_size, paths, batch_size):
    """Yield (path, probability of class 1) for each readable file, or (path, BadImage) for the others, in order."""
    def read(path):
        try:
            return load_image(path, image_size)
        except BadImage as bad:
            return bad

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        chunks = [paths[start:start + batch_size] for start in range(0, len(paths), batch_size)]
        pending = pool.map(read, chunks[0]) if chunks else None
        for index, chunk in enumerate(chunks):
            results = list(pending)
            if index + 1 < len(chunks):  # start reading the next batch while this one is labelled
                pending = pool.map(read, chunks[index + 1])
            images = [result for result in results if not isinstance(result, BadImage)]
            probabilities = iter(model.predict_on_batch(np.stack(images)).reshape(-1) if images else [])
            for path, result in zip(chunk, results):
                yield path, result if isinstance(result, BadImage) else float(next(probabilities))


def evaluate(model, metadata, folder, batch_size):
    """Accuracy, per-class precision and recall, and the confusion matrix on FOLDER/<class>/ photos.

    Returns (report text, number of unreadable files).
    """
    class_names = metadata["class_names"]
    found = class_folders(folder) if Path(folder).is_dir() else []
    if found != sorted(class_names):
        raise UsageError(f"{folder} must hold one folder per class, named {' and '.join(class_names)} (found: {', '.join(found) or 'none'})")
    paths, truth = [], []
    for label, name in enumerate(class_names):
        images, _ = find_images([Path(folder, name)])
        paths += images
        truth += [label] * len(images)
    if not paths:
        raise UsageError(f"no images found in the class folders of {folder}")
    confusion = np.zeros((2, 2), dtype=int)  # rows: true class, columns: predicted class
    bad = 0
    for (path, result), actual in zip(predict_files(model, metadata["image_size"], paths, batch_size), truth):
        if isinstance(result, BadImage):
            bad += 1
            continue
        confusion[actual, int(result >= 0.5)] += 1
    return format_report(confusion, class_names), bad


def format_report(confusion, class_names):
    total = confusion.sum()
    lines = [f"accuracy: {np.trace(confusion) / total:.2%} on {total} images", "",
             f"{'class':<12}{'precision':>10}{'recall':>10}{'images':>8}"]
    for index, name in enumerate(class_names):
        precision = confusion[index, index] / max(1, confusion[:, index].sum())
        recall = confusion[index, index] / max(1, confusion[index].sum())
        lines.append(f"{name:<12}{precision:>10.2%}{recall:>10.2%}{confusion[index].sum():>8}")
    width = max(12, *(len(name) + 2 for name in class_names))
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * width + "".join(f"{name:>{width}}" for name in class_names)]
    for index, name in enumerate(class_names):
        lines.append(f"{name:<{width}}" + "".join(f"{count:>{width}}" for count in confusion[index]))
    return "\n".join(lines)
