"""Defaults and names used across the toolkit: one source of truth for each fact."""
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATASET_DIR = PROJECT_DIR / "Dataset"
TRAIN_DIR = "Training_Set"
TEST_DIR = "Test_Set"
PREDICT_DIR = DATASET_DIR / "Predict"

MODEL_FILE = "model.h5"
WEIGHTS_FILE = "weights.h5"
REPORTS_DIR = "reports"          # learning curves and the run summary, next to the model files
CHECKPOINT_DIR = "checkpoint"    # best epoch so far and the resumable backup of a run

IMAGE_SIZE = 96       # pixels per side; measured best accuracy per CPU-minute (README, Performance)
BATCH_SIZE = 64
EPOCHS = 18
LEARNING_RATE = 1e-3  # peak of the warm-up + cosine schedule
SEED = 1337

# The files keras.utils.image_dataset_from_directory reads; anything else in a folder is ignored.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# Resizing method (tf.image.resize), shared by training and prediction, so a 4000x3000 phone photo
# is shrunk the way the training photos were: an area average.
INTERPOLATION = "area"

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_SOME_INPUTS_BAD = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem the user can fix (bad folder layout, missing model file...): exit code 2."""
