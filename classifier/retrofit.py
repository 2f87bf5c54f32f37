"""`train_CNN.py --fit-unknown`: give a model trained before the unknown score existed its score, and its
calibration, without training it again.

The network and its weights stay as they are (weights.h5 is not touched); model.h5 gets what
training.score_photos would have fitted: the unknown scorer (open_set.fit) on a sample of the
training photos and the validation photos, and the temperature (calibration.calibrate) on the
validation photos. The validation photos are the ones the model was trained without: the same
split of Training_Set (its --val-split and --seed, read from model.h5), so --data must be the
dataset the model was trained on.
"""
import random
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from . import artifacts, import_tensorflow
from .config import TRAIN_DIR, RunConfig, UsageError, counted
from .data import check_layout, image_dataset, labelled_samples, split_off
from .open_set import BANK_SIZE, MIN_HELD_OUT, feature_model, fit_after_training


def fit_unknown(model_path, data_dir, batch_size):
    """Fit and store the unknown scorer and the temperature of model_path on data_dir's photos; returns the new ModelInfo."""
    import_tensorflow()
    model, info = artifacts.load(model_path)
    if info.model.startswith("Keras "):
        raise UsageError(f"{model_path} comes from a Keras 2 script: train a model with train_CNN.py to get the unknown score")
    class_names = check_layout(data_dir)
    if class_names != info.class_names:
        raise UsageError(f"{data_dir} has the classes {', '.join(class_names)}, but {model_path} was trained on "
                         f"{', '.join(info.class_names)}: pass --data with the dataset the model was trained on")
    run = RunConfig.from_dict(info.run)
    samples, _ = labelled_samples(Path(data_dir, TRAIN_DIR), class_names, info.image_size)
    training, validation = split_off(samples, run.val_split, run.seed)
    # The bank is a sample of BANK_SIZE training photos; a few more are scored as new photos when
    # little is held out (open_set.fit). Features of the other training photos would not be used.
    training = random.Random(run.seed).sample(training, min(len(training), BANK_SIZE + MIN_HELD_OUT))
    print(f"Scoring {counted(len(training), 'training photo')} and the {counted(len(validation), 'validation photo')} of {data_dir} "
          f"with {model_path}...", file=sys.stderr, flush=True)
    outputs = feature_model(model).predict(image_dataset(training + validation, info.image_size, batch_size), verbose=0)
    scorer, temperature, (before, after) = fit_after_training(outputs, len(training), [sample.label for sample in validation],
                                                              run.seed)
    info = replace(info, open_set=scorer.settings(), bank=scorer.bank, temperature=temperature)
    with artifacts.atomic_path(model_path) as temporary:  # the earlier model.h5 stays whole until the new one is
        shutil.copyfile(model_path, temporary)
        info.write(temporary)
    flagged = "" if scorer.flagged is None else f", {scorer.flagged:.1%} of the validation photos above it"
    print(f"Saved the unknown score in {model_path}: threshold {scorer.threshold:.4f}{flagged}; temperature "
          f"{temperature:g} (validation ECE {before:.2%} before, {after:.2%} after); weights unchanged")
    return info
