"""A training run, top to bottom: settings → output folder → data → model → fit, phase by phase,
keeping the epoch with the best validation accuracy → Test_Set, scored once → model files and reports.

The validation photos are held out of Training_Set (--val-split); Test_Set never picks an epoch,
so its accuracy is a fair estimate of how the model does on new photos.
"""
import csv
import json
import math
import os
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import artifacts, import_tensorflow, reports

import_tensorflow()  # this module runs a training: TensorFlow it needs, with its start-up lines hidden
import keras  # noqa: E402
from .config import CHECKPOINT_DIR, DEFAULT_ARCH, EXIT_INTERRUPTED, MODEL_FILE, TEST_DIR, TRAIN_DIR, WEIGHTS_FILE, UsageError, counted
from .check import quick_check
from .data import batches, check_layout, decoded_photos, image_dataset, labelled_samples, split_off
from .distribute import global_batch_size, make_strategy, shard, writable_output
from .model import MODELS, Phase
from .runs import NEEDED_DISK_BYTES, Run, interrupted, prepare_output, training_log, writing

MIN_HEAD_STEPS = 100             # a pretrained model's head phase trains at least this many steps...
MAX_EPOCH_FACTOR = 10            # ...with at most this many times its default epochs (more_epochs_for_few_photos)
# Fewer training photos than HEAD_ONLY_BELOW: a pretrained model trains only its new head, for
# HEAD_ONLY_STEPS steps, on the whole backbone's features computed once (MODEL_CARD.md, "How many
# photos"): on a few dozen photos a class, fine-tuning blocks overfits, and the head needs hundreds
# of steps to converge, which on the pooled features take seconds. They come in HEAD_ONLY_EPOCHS
# epochs, each passing over the photos as often as that takes (passes_per_epoch): 1,200 epochs of
# one step each would spend their time validating and logging.
HEAD_ONLY_BELOW = 500
HEAD_ONLY_STEPS = 1200
HEAD_ONLY_EPOCHS = 10


@dataclass
class PlannedPhase:
    kind: Phase          # what trains: model.Phase.TRAIN for a model from scratch; HEAD, then FINE_TUNE for a pretrained one
    first_epoch: int     # counted from 0, as Keras counts
    end_epoch: int
    learning_rate: float
    warmup: bool         # one epoch of linear warm-up (from-scratch weights need it; pretrained ones do not)


def with_model_defaults(config, training_photos=0):
    """The config with the chosen model's defaults where the user gave none (0). Epochs are left
    at 0 until the number of training photos is known: a pretrained model given few photos trains
    more epochs (more_epochs_for_few_photos)."""
    arch = MODELS[config.arch]
    batch_size = config.batch_size or arch.batch_size
    if head_only(config, training_photos):
        default_epochs = HEAD_ONLY_EPOCHS
    else:
        default_epochs = training_photos and arch.epochs * more_epochs_for_few_photos(arch, training_photos, batch_size)
    epochs = config.epochs or default_epochs
    return replace(config, image_size=config.image_size or arch.image_size, epochs=epochs, batch_size=batch_size,
                   learning_rate=config.learning_rate or arch.learning_rate)


def more_epochs_for_few_photos(arch, training_photos, batch_size):
    """How many times a pretrained model's default epochs to train: enough that its head phase
    takes MIN_HEAD_STEPS steps, at most MAX_EPOCH_FACTOR times. 180 photos make 6 steps an epoch,
    and the new head learns little in 6 steps; on the frozen blocks' output (features.py) an
    epoch of so few photos takes a second. From-scratch models keep their epochs."""
    if not arch.pretrained:
        return 1
    steps = math.ceil(training_photos / batch_size) * arch.head_epochs
    return max(1, min(MAX_EPOCH_FACTOR, math.ceil(MIN_HEAD_STEPS / steps)))


def head_only(config, training_photos):
    """Whether a run trains only a pretrained model's new head (HEAD_ONLY_BELOW)."""
    return MODELS[config.arch].pretrained and 0 < (training_photos or 0) < HEAD_ONLY_BELOW


def passes_per_epoch(config, training_photos, batch_size):
    """How many times an epoch goes over the training photos: once, but for a head-only run, enough
    times that its epochs come to HEAD_ONLY_STEPS steps (each pass a new shuffle and new flips)."""
    if not head_only(config, training_photos):
        return 1
    return max(1, math.ceil(HEAD_ONLY_STEPS / (config.epochs * math.ceil(training_photos / batch_size))))


def plan_phases(config, training_photos=None):
    """A pretrained model first trains its new head on the frozen backbone (a large learning rate
    would wreck the ImageNet features while the head is random), then fine-tunes the top blocks
    at a small share of the learning rate (the model's fine_tune_share). The head takes the share
    of the epochs it has in the model's defaults (at least one); given few training photos, all of
    them (head_only). A model from scratch trains in one phase."""
    arch = MODELS[config.arch]
    if not arch.pretrained:
        return [PlannedPhase(Phase.TRAIN, 0, config.epochs, config.learning_rate, warmup=True)]
    if head_only(config, training_photos):
        return [PlannedPhase(Phase.HEAD, 0, config.epochs, config.learning_rate, warmup=False)]
    head_epochs = min(config.epochs, max(1, round(config.epochs * arch.head_epochs / arch.epochs)))
    phases = [PlannedPhase(Phase.HEAD, 0, head_epochs, config.learning_rate, warmup=False)]
    if config.epochs > head_epochs:
        phases.append(PlannedPhase(Phase.FINE_TUNE, head_epochs, config.epochs, config.learning_rate * arch.fine_tune_share, warmup=False))
    return phases


def compile_for(model, phase, steps_per_epoch):
    """AdamW with a cosine decay to zero at the phase's last epoch (after a warm-up epoch if asked)."""
    steps = steps_per_epoch * (phase.end_epoch - phase.first_epoch)
    warmup = steps_per_epoch if phase.warmup and steps > steps_per_epoch else 0
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=phase.learning_rate / 20 if warmup else phase.learning_rate,
        warmup_target=phase.learning_rate if warmup else None, warmup_steps=warmup, decay_steps=max(1, steps - warmup))
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])


def best_so_far(log_path):
    """The best reports.epoch_score in this run's log so far, so resuming never keeps a worse epoch."""
    if not log_path.exists():
        return None
    with open(log_path) as file:
        return max((reports.epoch_score(row) for row in csv.DictReader(file) if row.get("val_accuracy")), default=None)


@contextmanager
def exit_on_signals(output):
    """Ctrl-C or kill (SIGTERM) while fitting: say so (naming output, the run's folder, and the
    --resume command) and leave at once, exit code 130. Raising
    KeyboardInterrupt instead unwinds through fit() and tf.data's threads, which can abort the process
    ("free(): invalid next size"). Nothing is lost: the finished epochs are in the checkpoint, and the
    model files are only ever replaced whole, by renaming (artifacts.save)."""
    def leave(signum, frame):
        sys.stdout.flush()
        print(f"\n{interrupted(output)}", file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)

    previous = {number: signal.signal(number, leave) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@dataclass
class Photos:
    """The photos of a run: checked samples of each set, and how many files were skipped as unreadable."""
    train: list
    validation: list
    test: list
    skipped_train: int
    skipped_test: int


def train(config, overwrite=False, resume=False):
    """Run the training described by config (a RunConfig); returns the Test_Set accuracy."""
    config = with_model_defaults(config)
    class_names = check_layout(config.data)
    output = prepare_output(writable_output(config.output, config.distribute), overwrite, resume)
    if resume:  # say which run goes on, and from where (--resume alone picks the latest interrupted one)
        log_path = training_log(output)
        done = len(reports.read_log(log_path)) if log_path.exists() else 0
        print(f"Resuming the run in {output} after epoch {done} of {config.epochs or 'its default'}")
    strategy = make_strategy(config.distribute)  # before any other TensorFlow op, as MultiWorkerMirroredStrategy requires
    batch_size = global_batch_size(strategy, config.distribute, config.batch_size)  # --batch-size is per replica

    photos = load_photos(config, class_names)
    run = Run(with_model_defaults(config, len(photos.train)), class_names, batch_size, strategy, output)
    run.settings.write_text(json.dumps(run.config.to_dict(), indent=2) + "\n")
    model = build_model(run)
    started = time.time()
    with writing("the checkpoint", run.output):
        fit = fit_phases(run, model, photos)
    minutes = (time.time() - started) / 60
    scores = score_photos(run, model, fit, photos)
    return save_results(run, model, photos, scores, minutes)


def load_photos(config, class_names):
    """Check every photo, hold out the validation share of Training_Set, and say what was found."""
    samples, skipped = labelled_samples(Path(config.data, TRAIN_DIR), class_names, config.image_size)
    train_samples, val_samples = split_off(samples, config.val_split, config.seed)
    test_samples, skipped_test = labelled_samples(Path(config.data, TEST_DIR), class_names, config.image_size)
    if skipped or skipped_test:
        print(f"Skipped {counted(skipped + skipped_test, 'unreadable file')} ({skipped} in {TRAIN_DIR}, {skipped_test} in {TEST_DIR}).")
    print(f"{TRAIN_DIR}: {counted(len(train_samples), 'image')} for training, {len(val_samples)} held out for validation; "
          f"{TEST_DIR}: {counted(len(test_samples), 'image')}; classes: " + ", ".join(f"{name} ({index})" for index, name in enumerate(class_names)))
    quick_check(samples, test_samples, class_names, config.image_size)  # leakage, imbalance, tiny photos: a warning line each
    return Photos(train_samples, val_samples, test_samples, skipped, skipped_test)


def build_model(run):
    from .model import make_model

    config = run.config
    keras.utils.set_random_seed(config.seed)
    with run.strategy.scope():  # the variables are mirrored on every replica
        model = make_model(config.arch, config.image_size, len(run.class_names))
    print(f"Model '{config.arch}': {model.count_params():,} parameters, {config.image_size}x{config.image_size} px, "
          f"batch {run.batch_size}, {plural(config.epochs, 'epoch')}")
    return model


@dataclass
class FitData:
    """What model.fit trains on: the whole model on the photos, or for a pretrained model its top on
    the frozen blocks' output, computed once (features.py)."""
    model: keras.Model
    train: object               # tf.data stream of augmented, shuffled batches
    validation: object          # tf.data stream, or None when nothing is held out
    all_training: object        # the training then validation photos, not augmented, as `model` takes them
    passes: int = 1             # times an epoch of `train` goes over the training photos (passes_per_epoch)


def data_for_fit(run, model, photos):
    """The FitData of a run: for a pretrained model, after one pass of its frozen blocks over the photos."""
    config, batch_size = run.config, run.batch_size
    if not MODELS[config.arch].pretrained:  # from scratch: every layer trains, on the photos
        train = decoded_photos(photos.train, config.image_size, cache=True)
        validation = decoded_photos(photos.validation, config.image_size, cache=True) if photos.validation else None
        return FitData(model, shard(batches(train, batch_size, shuffle=True, seed=config.seed)),
                       shard(batches(validation, batch_size)) if validation is not None else None,
                       batches(train if validation is None else train.concatenate(validation), batch_size))  # from the caches
    from .features import feature_dataset, frozen_features
    from .model import split_frozen

    whole_backbone = head_only(config, len(photos.train))
    passes = passes_per_epoch(config, len(photos.train), batch_size)
    with run.strategy.scope():
        frozen, top = split_frozen(model, whole_backbone)
    print(f"Running the {'backbone' if whole_backbone else 'frozen blocks of the backbone'} once over the "
          f"{counted(len(photos.train), 'training photo')} and their mirror images, and the "
          f"{counted(len(photos.validation), 'validation photo')}; each epoch then trains only the "
          f"{'new head' if whole_backbone else 'top'}" + (f", going over the photos {passes} times" if passes > 1 else "") + "...",
          flush=True)
    verbose = 1 if os.isatty(1) else 2
    train = frozen_features(frozen, photos.train, config.image_size, batch_size, mirrors=True, verbose=verbose)
    validation = frozen_features(frozen, photos.validation, config.image_size, batch_size, mirrors=False, verbose=verbose)
    stream = feature_dataset(train, photos.train, batch_size, shuffle=True, seed=config.seed, mirrored=True).repeat(passes)
    return FitData(top, shard(stream),
                   shard(feature_dataset(validation, photos.validation, batch_size)) if photos.validation else None,
                   feature_dataset(np.concatenate([train[:, 0], validation]), photos.train + photos.validation, batch_size), passes)


def fit_phases(run, model, photos):
    """model.fit, phase by phase; then the model holds the epoch with the best validation accuracy.

    Each phase has its own BackupAndRestore folder (its optimizer differs), and leaves its final
    weights behind, so an interrupted run resumes inside the phase it was in. Returns the FitData.
    """
    from .model import set_phase

    checkpoint, log_path = run.checkpoint, run.log
    best_path = checkpoint / "best.weights.h5"
    fit = data_for_fit(run, model, photos)
    steps_per_epoch = math.ceil(len(photos.train) / run.batch_size) * fit.passes
    for phase in plan_phases(run.config, len(photos.train)):
        done = checkpoint / f"after-{phase.kind.value}.weights.h5"
        if done.exists():  # finished before an interruption
            model.load_weights(str(done))
            continue
        with run.strategy.scope():
            set_phase(model, phase.kind)
            compile_for(fit.model, phase, steps_per_epoch)
        announce(phase, fit.model)
        callbacks = [RoomToWrite(run.output, model), keras.callbacks.BackupAndRestore(str(checkpoint / f"backup-{phase.kind.value}")),
                     EpochLog(str(log_path), append=log_path.exists())]
        if fit.validation is not None:
            callbacks.append(KeepBest(str(best_path), best_so_far(log_path)))
        with exit_on_signals(run.output):
            fit.model.fit(fit.train, validation_data=fit.validation, initial_epoch=phase.first_epoch, epochs=phase.end_epoch,
                          callbacks=callbacks, verbose=progress_verbosity(), shuffle=False)  # fit.train shuffles itself
            model.save_weights(str(done))
    if best_path.exists():  # keep the best epoch, not the last
        fit.model.load_weights(str(best_path))
    return fit


@dataclass
class Scores:
    """What the kept model says of the run's photos, and what is fitted on them after training."""
    test: np.ndarray            # probabilities on Test_Set (scored once, here), calibrated
    test_unknown: np.ndarray    # the unknown score of each Test_Set photo
    training: np.ndarray        # probabilities on the training then validation photos, not augmented (suspects.csv)
    scorer: object              # open_set.Scorer
    temperature: float          # calibration.calibrate on the validation photos; 1 where it did not help
    validation_ece: tuple       # (before, after) the temperature

    @property
    def test_flagged(self):
        """The share of Test_Set the unknown score flags; None when Test_Set is empty."""
        return float(np.mean(self.test_unknown > self.scorer.threshold)) if len(self.test_unknown) else None


def score_photos(run, model, fit, photos):
    """Test_Set, once; the training and validation photos from what fit cached (decoded photos, or a
    pretrained model's frozen features); and, fitted on those, the unknown scorer (open_set.fit) and
    the temperature (calibration.calibrate): both on the validation photos, never on Test_Set."""
    from .calibration import scaled
    from .open_set import feature_model, fit_after_training

    outputs = feature_model(fit.model).predict(fit.all_training, verbose=0)
    scorer, temperature, validation_ece = fit_after_training(outputs, len(photos.train),
                                                             [sample.label for sample in photos.validation], run.config.seed)
    test_photos = image_dataset(photos.test, run.config.image_size, run.batch_size)
    test, test_features = feature_model(model).predict(test_photos, verbose=0)
    return Scores(scaled(test, temperature), scorer.scores(test_features), scaled(outputs[0], temperature), scorer,
                  temperature, validation_ece)


def save_results(run, model, photos, scores, minutes):
    """model.h5, weights.h5 and the reports; the checkpoint goes once they are written. Returns the Test_Set accuracy."""
    from .prediction import confusion_matrix

    config, class_names, batch_size, output = run.config, run.class_names, run.batch_size, run.output
    report_dir, log_path = run.reports, run.log
    confusion = confusion_matrix([sample.label for sample in photos.test], scores.test.argmax(axis=1), len(class_names))
    accuracy = float(np.trace(confusion) / max(1, confusion.sum()))
    info = artifacts.ModelInfo(class_names, config.image_size, model=config.arch, test_accuracy=round(accuracy, 4),
                               keras_version=keras.__version__, weights_dtype="float16" if config.float16 else "float32",
                               run=config.to_dict(), open_set=scores.scorer.settings(), temperature=scores.temperature,
                               bank=scores.scorer.bank)
    with writing(f"{MODEL_FILE} and {WEIGHTS_FILE}", output):
        artifacts.save(model, info, output / MODEL_FILE, output / WEIGHTS_FILE)
    compile_saved(output)
    shutil.rmtree(run.checkpoint, ignore_errors=True)
    facts = {
        TRAIN_DIR: f"{counted(len(photos.train), 'image')} for training, {len(photos.validation)} for validation "
                   f"({photos.skipped_train} unreadable skipped)",
        TEST_DIR: f"{counted(len(photos.test), 'image')} ({photos.skipped_test} unreadable skipped)",
        "classes": ", ".join(class_names), "model": f"{config.arch}, {model.count_params():,} parameters",
        "image size": f"{config.image_size}x{config.image_size} px", "batch size": batch_size, "epochs asked": config.epochs,
        "validation share": config.val_split, "learning rate": config.learning_rate, "seed": config.seed,
        "training time": f"{minutes:.1f} min", "Keras": keras.__version__,
        "temperature": f"{scores.temperature:g} (validation ECE {scores.validation_ece[0]:.2%} before, {scores.validation_ece[1]:.2%} after)",
        "unknown score": f"above {scores.scorer.threshold:.4f}: {scores.scorer.flagged:.1%} of the validation photos flagged"
                         if scores.scorer.flagged is not None else f"above {scores.scorer.threshold:.4f}"}
    reports.write_report(report_dir, report_result(run, model, photos, scores, facts))
    kept = "the best validation epoch" if photos.validation else "the last epoch (nothing held out)"
    print(f"{TEST_DIR} accuracy: {accuracy:.2%} ({kept} kept; training took {minutes:.1f} min)"
          + (f"; {scores.test_flagged:.1%} of its photos would be labelled unknown" if scores.test_flagged is not None else ""))
    warn_if_chance(log_path, len(class_names), config.arch)
    print(f"Saved {output / MODEL_FILE} and {output / WEIGHTS_FILE}; reports in {report_dir}")
    print(f"Label photos with it: python predict.py PHOTOS --model {output / MODEL_FILE}")
    return accuracy


def report_result(run, model, photos, scores, facts):
    """What the report shows (reports.Result). The heatmaps of the mistakes are made here: Grad-CAM runs
    the model, and the report only draws."""
    from .heatmap import Explainer

    mistakes = reports.disagreements(photos.test, scores.test)
    shown = mistakes[:reports.MAX_MISTAKES]
    if shown:  # each under the heatmap of the class it was wrongly put in
        explainer, heatmaps = Explainer(model), []
        for images, _ in image_dataset([mistake.sample for mistake in shown], run.config.image_size, run.batch_size):
            heatmaps += explainer.heatmaps(images, [mistake.predicted for mistake in shown[len(heatmaps):len(heatmaps) + len(images)]])
        for mistake, heatmap in zip(shown, heatmaps):
            mistake.heatmap = heatmap
    training = photos.train + photos.validation
    return reports.Result(run.class_names, run.log, facts, np.array([sample.label for sample in photos.test]), scores.test,
                          mistakes, reports.disagreements(training, scores.training), len(training), scores.test_flagged)


def compile_saved(output):
    """model.tflite beside the saved files, from what they hold (float16 weights), so that predict.py
    labels photos without TensorFlow and gives what model.h5 gives (compiled.py)."""
    from .compiled import compile_model, compiled_path

    network, info = artifacts.load(output / MODEL_FILE)
    try:
        compile_model(network, info, output / MODEL_FILE, output / WEIGHTS_FILE)
    except OSError as error:  # the model is saved: only the fast start waits for predict.py to write it
        print(f"warning: could not write {compiled_path(output / MODEL_FILE)} ({error.strerror or error}); "
              "predict.py will write it on its first run", file=sys.stderr)


def announce(phase, model):
    epochs = f"epoch {phase.first_epoch + 1}" if phase.end_epoch - phase.first_epoch == 1 else \
        f"epochs {phase.first_epoch + 1}-{phase.end_epoch}"
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    print(f"Phase '{phase.kind.value}' ({epochs}): {phase.kind.what}; {trainable:,} trainable parameters, "
          f"learning rate {phase.learning_rate:g}")


def warn_if_chance(log_path, class_count, arch):
    """A run whose held-out accuracy never left chance learned nothing; say what to try."""
    best = (best_so_far(log_path) or (None,))[0]
    if best is not None and best <= 1 / class_count + 0.05:
        hint = ("or check that each class folder holds its own kind of photo" if MODELS[arch].pretrained
                else f"or epochs, or the pretrained default (--arch {DEFAULT_ARCH})")
        print(f"warning: the validation accuracy never rose above chance ({best:.1%} with {class_count} classes): "
              f"the model learned nothing. Try more photos {hint}.")


def plural(count, word):
    return f"{count} {word}" + ("" if count == 1 else "s")


def progress_verbosity():
    # One progress bar per epoch in a terminal; one line per epoch in a log file or CI.
    return "auto" if os.isatty(1) else 2


class EpochLog(keras.callbacks.CSVLogger):
    """Keras's CSVLogger, with epochs counted from 1 as the progress bar counts them."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


class KeepBest(keras.callbacks.Callback):
    """Save the weights of the best epoch by reports.epoch_score (accuracy, then loss, on the
    validation photos). Keras's ModelCheckpoint ranks by one metric, so on a tie it keeps the
    first epoch, the least trained one."""

    def __init__(self, path, best=None):
        super().__init__()
        self.path, self.best = path, best

    def on_epoch_end(self, epoch, logs=None):
        score = reports.epoch_score(logs)
        if self.best is None or score > self.best:
            self.best = score
            self.model.save_weights(self.path)


class RoomToWrite(keras.callbacks.Callback):
    """Before each epoch's checkpoint (the callbacks after this one), check the disk still has room.
    A disk that fills up during the run then stops it with one line, before HDF5 meets a failed
    write, which crashes h5py and the process with it: an OSError of check_room, for the largest file
    to come (BackupAndRestore's weights and optimizer, or the whole model's weights after a phase),
    ends in writing()'s one line. `whole`: the model that holds fit's model (the same one, but for a
    pretrained model, whose fit trains only the top on cached features)."""

    def __init__(self, output, whole=None):
        super().__init__()
        self.output, self.whole = output, whole

    def on_epoch_end(self, epoch, logs=None):
        free = shutil.disk_usage(self.output).free
        if free < NEEDED_DISK_BYTES:
            raise UsageError(f"only {free // 2**20} MB left in {self.output}, too little for the checkpoint of epoch {epoch + 1}; "
                             f"the earlier {MODEL_FILE} and {WEIGHTS_FILE} are untouched and the epochs before it kept: "
                             "free some space, then run the same command again with --resume")
        optimizer = self.model.optimizer.variables if self.model.optimizer is not None else []
        largest = max(artifacts.hdf5_bytes(self.model.weights + list(optimizer)), artifacts.hdf5_bytes((self.whole or self.model).weights))
        artifacts.check_room(Path(self.output, CHECKPOINT_DIR), largest)
