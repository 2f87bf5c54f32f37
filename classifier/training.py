"""A training run, top to bottom: check the output folder, stream the data, fit, keep the best
epoch, save model.h5 and weights.h5, and write the learning curves."""
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

NEEDED_DISK_BYTES = 200 * 2**20  # model, weights, checkpoint and backup of a model under ~10 M parameters


def prepare_output(output_dir, overwrite, resume):
    """Refuse to clobber a trained model or an interrupted run; check the folder is writable and has room."""
    output = Path(output_dir)
    existing = [output / name for name in (MODEL_FILE, WEIGHTS_FILE) if (output / name).exists()]
    if existing and not overwrite:
        raise UsageError(f"{existing[0]} already exists: pass --overwrite to replace it, or --output DIR to write elsewhere")
    checkpoint = output / CHECKPOINT_DIR
    if checkpoint.exists() and not resume:
        if not overwrite:
            raise UsageError(f"{checkpoint} holds an interrupted run: pass --resume to continue it, or --overwrite to start over")
        shutil.rmtree(checkpoint)
    if resume and not (checkpoint / "backup").exists():
        raise UsageError(f"nothing to resume: {checkpoint / 'backup'} not found (start a new run without --resume)")
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


def train(data_dir, output_dir, model_kind, image_size, batch_size, epochs, learning_rate, seed, overwrite=False, resume=False):
    class_names = check_layout(data_dir)
    output = prepare_output(output_dir, overwrite, resume)
    checkpoint, report_dir = output / CHECKPOINT_DIR, output / REPORTS_DIR

    train_ds, train_count, train_bad = image_dataset(Path(data_dir, TRAIN_DIR), class_names, image_size, batch_size, shuffle=True, seed=seed)
    test_ds, test_count, test_bad = image_dataset(Path(data_dir, TEST_DIR), class_names, image_size, batch_size)
    if train_bad or test_bad:
        print(f"Skipped {train_bad + test_bad} unreadable files ({train_bad} in {TRAIN_DIR}, {test_bad} in {TEST_DIR}).")
    print(f"{TRAIN_DIR}: {train_count} images, {TEST_DIR}: {test_count} images; classes {class_names[0]} (0) and {class_names[1]} (1)")

    import_tensorflow()
    import keras
    from .model import make_model

    keras.utils.set_random_seed(seed)
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
    metadata = {"class_names": class_names, "image_size": image_size, "interpolation": INTERPOLATION,
                "model": model_kind, "test_accuracy": round(float(accuracy), 4), "keras_version": keras.__version__}
    artifacts.save(model, metadata, output / MODEL_FILE, output / WEIGHTS_FILE)
    shutil.rmtree(checkpoint, ignore_errors=True)
    curves = reports.plot_learning_curves(log_path, report_dir / "learning_curves.png")
    print(f"{TEST_DIR} accuracy: {accuracy:.2%} (best epoch kept; training took {minutes:.1f} min)")
    print(f"Saved {output / MODEL_FILE} and {output / WEIGHTS_FILE}; learning curves in {log_path} and {curves}")
    return accuracy


def _progress_verbosity():
    # One progress bar per epoch in a terminal; one line per epoch in a log file or CI.
    return "auto" if os.isatty(1) else 2
