"""Names, defaults and the settings of a training run: one source of truth for each fact."""
import argparse
import dataclasses
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATASET_DIR = PROJECT_DIR / "Dataset"
TRAIN_DIR = "Training_Set"
TEST_DIR = "Test_Set"
PREDICT_DIR = DATASET_DIR / "Predict"
RUNS_DIR = PROJECT_DIR / "runs"     # each training run gets its own folder here unless --output says otherwise

MODEL_FILE = "model.h5"
WEIGHTS_FILE = "weights.h5"
REPORTS_DIR = "reports"          # learning curves and the run summary, next to the model files
CHECKPOINT_DIR = "checkpoint"    # best epoch so far, the resumable backup and the run's settings

DEFAULT_ARCH = "efficientnet-lite0"
BATCH_SIZE = 32       # predict.py's and serve.py's; training's is the model's (model.Architecture.batch_size)
VAL_SPLIT = 0.1       # share of Training_Set held out to choose the epoch kept; Test_Set is scored once, at the end
SEED = 1337

# The photo files read when walking a folder; anything else there (.txt, .DS_Store) is ignored.
# HEIC/HEIF (iPhones), AVIF and WebP (phones, the web) are read by Pillow (images.py registers pillow-heif).
IMAGE_EXTENSIONS = (".avif", ".bmp", ".gif", ".heic", ".heif", ".jpeg", ".jpg", ".png", ".webp")
# Resizing method (tf.image.resize), shared by training and prediction, so a 4000x3000 phone photo
# is shrunk the way the training photos were: an area average.
INTERPOLATION = "area"

# --unsure-below's range, in the words of predict.py's and serve.py's --help and of their error.
UNSURE_RANGE = "from 0 to 1"

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_SOME_INPUTS_BAD = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
TRAINING_INTERRUPTED = ("Interrupted: no model file was changed; run again with --resume to continue from the "
                        "last finished epoch.")


def counted(number, noun):
    """'1 photo', '3 photos': a count and its noun, singular for one."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def short_path(path):
    """runs/cnn rather than /home/me/project/runs/cnn when the user is in the project folder."""
    relative = os.path.relpath(path)
    return Path(relative) if not relative.startswith("..") else Path(path)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser for the scripts: a mistyped flag is answered with the flag it was probably meant
    to be, as in `error: unrecognized arguments: --epohcs 3 (did you mean --epochs?)`."""

    def __init__(self, description):
        super().__init__(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)

    def error(self, message):
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        flags = [option for action in self._actions for option in action.option_strings]
        for word in unknown.group(1).split() if unknown else []:
            close = difflib.get_close_matches(word.split("=")[0], flags, n=1, cutoff=0.7) if word.startswith("-") else []
            if close:
                message += f" (did you mean {close[0]}?)"
                break
        super().error(message)


class UsageError(Exception):
    """A problem the user can fix (bad folder layout, missing model file...): exit code 2.

    Its text is one line that says what is wrong and what to do; the scripts print it as `error: ...`.
    """


@dataclass
class RunConfig:
    """Everything that decides what a training run learns. Saved in the checkpoint (so --resume
    continues the same run) and in model.h5 (so a model says how it was made)."""
    data: str = str(DATASET_DIR)
    output: str = ""                 # empty: a new folder under runs/
    arch: str = DEFAULT_ARCH         # a name from model.MODELS
    image_size: int = 0              # 0: the model's own default
    epochs: int = 0                  # 0: the model's own default (all phases together)
    batch_size: int = 0              # 0: the model's own default (classic: 64, as the classic tutorial; else BATCH_SIZE)
    learning_rate: float = 0.0       # 0: the model's own default
    val_split: float = VAL_SPLIT
    seed: int = SEED
    float16: bool = True             # store the saved weights as float16: half the size, same accuracy
    distribute: str = "none"

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})
