"""What a model file says about its model besides the network: ModelInfo, written into model.h5 as
an HDF5 attribute (and the unknown score's stored features as an array beside it), read back here
only. artifacts.py writes and loads the model files; legacy.py makes a ModelInfo for Keras 2 files.
"""
import json
from dataclasses import dataclass, field, fields

import h5py
import numpy as np

from .config import INTERPOLATION, UsageError

METADATA_KEY = "classifier_metadata"
BANK_KEY = "classifier_open_set_bank"  # the training photos' features of the unknown score (open_set.py)


@dataclass
class ModelInfo:
    """What a model file says about its model, besides the network: written to and read from the
    HDF5 attribute METADATA_KEY here only, and used by predict, export, legacy files and benchmarks."""
    class_names: list
    image_size: int
    interpolation: str = INTERPOLATION
    model: str = ""                      # the MODELS name, or what wrote a Keras 2 file
    test_accuracy: float | None = None   # on Test_Set, measured once at the end of training
    keras_version: str = ""
    weights_dtype: str = "float32"
    run: dict = field(default_factory=dict)  # the RunConfig of the training run
    open_set: dict = field(default_factory=dict)  # the unknown score's settings (open_set.Scorer.settings); none: no score
    temperature: float = 1.0             # divides the log-probabilities (open_set.calibrate); 1: left as the network gives them
    bank: object = field(default=None, repr=False, compare=False)  # the unknown score's stored features, an array of its own

    def to_dict(self):
        """The JSON metadata: every field but the bank."""
        return {item.name: getattr(self, item.name) for item in fields(self) if item.name != "bank"}

    @property
    def scorer(self):
        """The open_set.Scorer stored with the model, or None (a model trained before it existed, a Keras 2 file)."""
        from .open_set import Scorer
        return Scorer.from_settings(self.open_set, self.bank) if self.open_set and self.bank is not None else None

    def write(self, path):
        with h5py.File(path, "a") as file:
            file.attrs[METADATA_KEY] = json.dumps(self.to_dict())
            if BANK_KEY in file:
                del file[BANK_KEY]
            if self.bank is not None:
                file.create_dataset(BANK_KEY, data=np.asarray(self.bank, np.float16))

    @classmethod
    def read(cls, path):
        """The ModelInfo of a model.h5 written by train_CNN.py (this version or an earlier one)."""
        try:
            with h5py.File(path, "r") as file:
                values = json.loads(file.attrs[METADATA_KEY])
                bank = file[BANK_KEY][()] if BANK_KEY in file else None
            if not isinstance(values, dict):  # JSON, but a list or a number: not what train_CNN.py writes
                raise TypeError(f"{METADATA_KEY} is not a JSON object")
            known = {item.name for item in fields(cls)} - {"bank"}
            return cls(**{key: value for key, value in values.items() if key in known}, bank=bank)
        except (KeyError, TypeError, ValueError):  # no attribute, or not the JSON train_CNN.py writes
            raise UsageError(f"{path} was not written by train_CNN.py (no class names or image size in it); retrain with train_CNN.py")
        except OSError as error:
            raise UsageError(f"{path} is not a readable HDF5 model file ({error}); train one with train_CNN.py")
