"""A training run's folder: where it goes (runs/<arch>, -2, -3...), what --resume continues, and
the checks before and during a run that the output can hold it.

No TensorFlow here, directly or through another module: train_CNN.py finds a run folder and
answers a --resume usage error in a fraction of a second, before training.py loads TensorFlow.
"""
import errno
import json
import os
import shutil
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

from .config import (CHECKPOINT_DIR, MODEL_FILE, REPORTS_DIR, RUNS_DIR, TRAINING_INTERRUPTED, WEIGHTS_FILE, RunConfig, UsageError,
                     short_path)

NEEDED_DISK_BYTES = 200 * 2**20  # model, weights, checkpoint and backup of a model under ~10 M parameters
SETTINGS_FILE = "run.json"       # the RunConfig, in the checkpoint folder: what --resume continues
LOG_FILE = "training_log.csv"    # one row per finished epoch, in the reports folder
# Why a write can fail mid-run: disk full, over quota, folder made read-only, file too big.
CANNOT_WRITE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


@dataclass
class Run:
    """What the steps of a training run share: its settings, with the model's defaults filled in
    (training.with_model_defaults), its classes, its global batch size (--batch-size times the
    replicas), its tf.distribute strategy, and the folder its files go to."""
    config: RunConfig
    class_names: list
    batch_size: int
    strategy: object
    output: Path

    @property
    def checkpoint(self):
        return self.output / CHECKPOINT_DIR

    @property
    def reports(self):
        return self.output / REPORTS_DIR

    @property
    def log(self):
        return training_log(self.output)

    @property
    def settings(self):
        return self.checkpoint / SETTINGS_FILE


def training_log(output):
    return Path(output, REPORTS_DIR, LOG_FILE)


def new_run_folder(arch):
    """runs/<arch>, or runs/<arch>-2, -3... : a new folder for each run, so no run replaces another."""
    for number in range(1, 10_000):
        folder = RUNS_DIR / (arch if number == 1 else f"{arch}-{number}")
        # A start that failed before its first epoch (no photos yet, say) leaves nothing worth keeping:
        # the next run takes its folder, so the README's next command still finds runs/<arch>/model.h5.
        if not folder.exists() or not (folder / MODEL_FILE).exists() and not has_finished_epochs(folder):
            return short_path(folder)
    raise UsageError(f"{RUNS_DIR} is full of runs: pass --output DIR")


def latest_interrupted_run():
    """The most recent folder under runs/ that holds an interrupted run, for --resume without --output."""
    candidates = sorted((path for path in RUNS_DIR.glob(f"*/{CHECKPOINT_DIR}/{SETTINGS_FILE}") if has_finished_epochs(path.parent.parent)),
                        key=lambda path: path.stat().st_mtime)
    if not candidates:
        raise UsageError(f"no interrupted run found in {RUNS_DIR}: pass --output DIR of the run to resume")
    return short_path(candidates[-1].parent.parent)


def resume_settings(output, given):
    """The interrupted run's RunConfig; a flag given now must agree with it."""
    path = Path(output, CHECKPOINT_DIR, SETTINGS_FILE)
    if not path.is_file():
        raise UsageError(f"nothing to resume in {output}: {path} not found (start a new run without --resume)")
    saved = RunConfig.from_dict(json.loads(path.read_text()))
    for name, value in given.items():
        if name != "output" and getattr(saved, name) != value:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {value} contradicts the interrupted run in {output}, which has {flag} "
                             f"{getattr(saved, name)}: resume without {flag}, or start a new run")
    return replace(saved, output=str(output))


def latest_model(runs_dir=RUNS_DIR):
    """The model.h5 of the run folder written last, or None."""
    models = sorted(Path(runs_dir).glob(f"*/{MODEL_FILE}"), key=os.path.getmtime)
    return models[-1] if models else None


def has_finished_epochs(output):
    """Whether OUTPUT holds an interrupted run: its settings and at least one finished epoch. A run
    stopped during the photo scan or its first epoch left nothing to continue, and blocks nothing."""
    checkpoint = Path(output, CHECKPOINT_DIR)
    finished = any(checkpoint.glob("backup-*")) or any(checkpoint.glob("after-*.weights.h5"))
    return finished and (checkpoint / SETTINGS_FILE).exists()


def interrupted(output=None):
    """The line a training run stopped by Ctrl-C or kill ends with: which folder holds its checkpoint,
    and the command that continues it (or, stopped before an epoch finished, that there is none)."""
    if output is None:
        return TRAINING_INTERRUPTED
    folder = short_path(output)
    if not has_finished_epochs(output):
        return (f"Interrupted before an epoch finished: no model file was changed, and {folder} holds nothing to "
                "resume; run the same command again to start over.")
    return (f"Interrupted: no model file was changed; the finished epochs are kept in {Path(folder, CHECKPOINT_DIR)}. "
            f"Continue with: python train_CNN.py --resume --output {folder}")


def prepare_output(output_dir, overwrite, resume):
    """Refuse to clobber a trained model or an interrupted run; check the folder is writable and has room."""
    output = Path(output_dir)
    checkpoint = output / CHECKPOINT_DIR
    existing = [output / name for name in (MODEL_FILE, WEIGHTS_FILE) if (output / name).exists()]
    if existing and not overwrite:
        how = "--resume --overwrite to continue the run and replace it at the end" if resume else "--overwrite to replace it"
        raise UsageError(f"{existing[0]} already exists: pass {how}, or --output DIR to write elsewhere")
    if has_finished_epochs(output) and not resume and not overwrite:
        raise UsageError(f"{checkpoint} holds an interrupted run: pass --resume to continue it, or --overwrite to start over")
    if checkpoint.exists() and not resume:  # a run started over
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
        raise UsageError(f"only {free // 2**20} MB free in {output}: training needs about {NEEDED_DISK_BYTES // 2**20} MB; "
                         "free some space or pass --output DIR")
    return output


@contextmanager
def writing(what, output):
    """A disk that fills up, or an output folder made read-only, during the run: one line naming the
    folder and the fix (a UsageError: exit code 2, as when prepare_output finds it before training),
    not a traceback. Nothing is lost: artifacts.save is atomic and the checkpoint stays for --resume."""
    try:
        yield
    except OSError as error:
        if error.errno not in CANNOT_WRITE:
            raise
        close_hdf5_files_in(output)
        raise UsageError(f"cannot write {what} in {output} ({os.strerror(error.errno)}); the earlier {MODEL_FILE} and "
                         f"{WEIGHTS_FILE} are untouched and the finished epochs kept: free some space or make the folder "
                         "writable, then run the same command again with --resume") from None


def close_hdf5_files_in(folder):
    """Keras leaves open the HDF5 file it failed to write; close it, quietly (each step meets the same
    full disk), as h5py.File.close does. Else h5py prints tracebacks when it is freed and Python crashes at exit."""
    import h5py

    folder = os.path.realpath(folder)
    for file_id in h5py.h5f.get_obj_ids(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE):
        if os.path.realpath(os.fsdecode(file_id.name)).startswith(folder + os.sep):
            for kinds in (h5py.h5f.OBJ_LOCAL | ~h5py.h5f.OBJ_FILE, h5py.h5f.OBJ_LOCAL | h5py.h5f.OBJ_FILE):
                with suppress(Exception):
                    file_id._close_open_objects(kinds)
            with suppress(Exception):
                file_id.close()
