"""A training run, top to bottom: check the output folder, stream the data, fit, keep the best
epoch, save model.h5 and weights.h5, and write the reports (learning curves, confusion matrix, summary)."""
import csv
import math
import os
import shutil
import signal
import time
from pathlib import Path

from . import artifacts, import_tensorflow, reports
from .config import CHECKPOINT_DIR, INTERPOLATION, MODEL_FILE, REPORTS_DIR, TEST_DIR, TRAIN_DIR, WEIGHTS_FILE, UsageError
from .data import check_layout, image_dataset
from .distribute import global_batch_size, make_strategy, shard, writable_output

NEEDED_DISK_BYTES = 200 * 2**20  # model, weights, checkpoint and backup of a model under ~10 M parameters


def prepare_output(output_dir, overwrite, resume):
    """Refuse to clobber a trained model or an interrupted run; check the folder is writable and has room."""
    output = Path(output_dir)
    checkpoint = output / CHECKPOINT_DIR
    backup = checkpoint / "backup"  # written at the end of each epoch: without it there is nothing to resume
    if resume and not backup.exists():
        raise UsageError(f"nothing to resume: {backup} not found (start a new run without --resume)")
    existing = [output / name for name in (MODEL_FILE, WEIGHTS_FILE) if (output / name).exists()]
    if existing and not overwrite:
        how = "--resume --overwrite to continue the run and replace it at the end" if resume else "--overwrite to replace it"
        raise UsageError(f"{existing[0]} already exists: pass {how}, or --output DIR to write elsewhere")
    if backup.exists() and not resume and not overwrite:
        raise UsageError(f"{checkpoint} holds an interrupted run: pass --resume to continue it, or --overwrite to start over")
    if checkpoint.exists() and not resume:  # a run started over, or one stopped before its first epoch ended
        shutil.rmtree(checkpoint)
    try:
        (output / REPORTS_DIR).mkdir(parents=True, exist_ok=True)
        checkpoint.mkdir(exist_ok=True)
        probe = checkpoint / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"cannot write to {output} ({error.strerror}): pass --output DIR with a writable folder")
    free = shutil.disk_usage(output).free
    if free < NEEDED_DISK_BYTES:
        raise UsageError(f"only {free // 2**20} MB free in {output}: training needs about {NEEDED_DISK_BYTES // 2**20} MB; free some space or pass --output DIR")
    return output


def compile_model(model, steps_per_epoch, epochs, learning_rate):
    """AdamW with one epoch of linear warm-up, then cosine decay to zero at the last epoch."""
    import keras

    warmup = steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 20, warmup_target=learning_rate, warmup_steps=warmup,
        decay_steps=max(1, steps_per_epoch * epochs - warmup))
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=["accuracy"],
    )


def best_so_far(log_path):
    """The best Test_Set accuracy in an earlier (interrupted) run's log, so resuming never keeps a worse epoch."""
    if not log_path.exists():
        return None
    with open(log_path) as file:
        scores = [float(row["val_accuracy"]) for row in csv.DictReader(file) if row.get("val_accuracy")]
    return max(scores, default=None)


def stop_on_sigterm():
    """Treat SIGTERM like Ctrl-C, so `kill` also leaves the checkpoint and the old model intact."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def train(data_dir, output_dir, model_kind, image_size, batch_size, epochs, learning_rate, seed, overwrite=False, resume=False,
          distribute="none", float16=True):
    class_names = check_layout(data_dir)
    output = prepare_output(writable_output(output_dir, distribute), overwrite, resume)
    checkpoint, report_dir = output / CHECKPOINT_DIR, output / REPORTS_DIR
    strategy = make_strategy(distribute)  # before any other TensorFlow op, as MultiWorkerMirroredStrategy requires
    batch_size = global_batch_size(strategy, distribute, batch_size)  # --batch-size is per replica

    train_ds, train_count, train_bad = image_dataset(Path(data_dir, TRAIN_DIR), class_names, image_size, batch_size, shuffle=True, seed=seed)
    test_ds, test_count, test_bad = image_dataset(Path(data_dir, TEST_DIR), class_names, image_size, batch_size)
    train_ds, test_ds = shard(train_ds), shard(test_ds)  # each worker of a cluster takes its share of the batches
    if train_bad or test_bad:
        print(f"Skipped {train_bad + test_bad} unreadable files ({train_bad} in {TRAIN_DIR}, {test_bad} in {TEST_DIR}).")
    print(f"{TRAIN_DIR}: {train_count} images, {TEST_DIR}: {test_count} images; classes {class_names[0]} (0) and {class_names[1]} (1)")

    import_tensorflow()
    import keras
    from .model import make_model

    keras.utils.set_random_seed(seed)
    with strategy.scope():  # the variables are mirrored on every replica
        model = make_model(model_kind, image_size)
        compile_model(model, math.ceil(train_count / batch_size), epochs, learning_rate)
    print(f"Model '{model_kind}': {model.count_params():,} parameters, {image_size}x{image_size} px, batch {batch_size}, {epochs} epochs")

    log_path, best_path = report_dir / "training_log.csv", checkpoint / "best.weights.h5"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(checkpoint / "backup")),
        keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_accuracy", mode="max", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=best_so_far(log_path) if resume else None),
        keras.callbacks.CSVLogger(str(log_path), append=resume),
    ]
    stop_on_sigterm()
    started = time.time()
    model.fit(train_ds, validation_data=test_ds, epochs=epochs, callbacks=callbacks,
              shuffle=False, verbose=_progress_verbosity())  # the dataset shuffles itself
    minutes = (time.time() - started) / 60

    if best_path.exists():  # keep the best epoch, not the last
        model.load_weights(str(best_path))
    loss, accuracy = model.evaluate(test_ds, verbose=0)
    confusion = confusion_on(model, test_ds)
    metadata = {"class_names": class_names, "image_size": image_size, "interpolation": INTERPOLATION,
                "model": model_kind, "test_accuracy": round(float(accuracy), 4), "keras_version": keras.__version__}
    artifacts.save(model, metadata, output / MODEL_FILE, output / WEIGHTS_FILE, float16=float16)
    shutil.rmtree(checkpoint, ignore_errors=True)
    curves = reports.plot_learning_curves(log_path, report_dir / "learning_curves.png")
    reports.plot_confusion_matrix(confusion, class_names, report_dir / "confusion_matrix.png")
    summary = reports.write_summary(report_dir / "summary.md", log_path, confusion, class_names, {
        TRAIN_DIR: f"{train_count} images ({train_bad} unreadable skipped)", TEST_DIR: f"{test_count} images ({test_bad} unreadable skipped)",
        "classes": f"{class_names[0]} (0), {class_names[1]} (1)", "model": f"{model_kind}, {model.count_params():,} parameters",
        "image size": f"{image_size}x{image_size} px", "batch size": batch_size, "epochs asked": epochs,
        "learning rate": learning_rate, "seed": seed, "training time": f"{minutes:.1f} min", "Keras": keras.__version__})
    print(f"{TEST_DIR} accuracy: {accuracy:.2%} (best epoch kept; training took {minutes:.1f} min)")
    print(f"Saved {output / MODEL_FILE} and {output / WEIGHTS_FILE}; learning curves in {log_path} and {curves}; summary in {summary}")
    return accuracy


def confusion_on(model, dataset):
    """Rows: true class, columns: predicted class (a probability >= 0.5 is class 1, as predict.py labels)."""
    import numpy as np
    tf = import_tensorflow()
    truth = np.concatenate(list(dataset.map(lambda images, labels: labels).as_numpy_iterator())).reshape(-1)
    predicted = model.predict(dataset, verbose=0).reshape(-1) >= 0.5  # same order: the test set is not shuffled
    return tf.math.confusion_matrix(truth.astype(int), predicted.astype(int), num_classes=2).numpy()


def _progress_verbosity():
    # One progress bar per epoch in a terminal; one line per epoch in a log file or CI.
    return "auto" if os.isatty(1) else 2
