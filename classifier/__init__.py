"""A small toolkit to train and use an image classifier (cats vs dogs first) with Keras 3.

Importing the package is cheap: TensorFlow is imported only by the modules that need it, so
`--help` and usage errors answer at once.
"""
import os
from contextlib import contextmanager

# TensorFlow's C++ start-up logs (oneDNN notices, CUDA probing on CPU-only machines) would bury
# our own lines; users can still raise the level by setting the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextmanager
def quiet_stderr():
    """Point the stderr file descriptor at /dev/null for the block: C++ libraries (TensorFlow's
    start-up, LiteRT's "Created TensorFlow Lite XNNPACK delegate") write there before any log
    setting applies. Python errors raised in the block still show: they print afterwards."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow():
    """Import TensorFlow and Keras with TensorFlow's C++ start-up lines hidden.

    Those lines (oneDNN notices, "Could not find cuda drivers") are written straight to the
    stderr file descriptor before any log setting applies (quiet_stderr).
    """
    import logging
    import sys

    if "tensorflow" not in sys.modules:
        with quiet_stderr():
            import tensorflow  # noqa: F401
            import keras  # noqa: F401
        # Keras notes through absl that HDF5 files are "legacy": writing them is the point here.
        logging.getLogger("absl").setLevel(logging.ERROR)
        # TensorFlow's Python warnings are about its internals, such as "triggered tf.function
        # retracing" when the model and the top it trains (features.py) predict in turn: not the user's concern.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return sys.modules["tensorflow"]
