"""Old model files: model.h5 (and weights.h5) written by Keras 2 scripts, standalone Keras 2.x or
tf.keras 2.x, such as the classic cats-vs-dogs tutorial.

Keras 3 refuses most of them: Keras 2.1 stored a Sequential model's config as a bare list of
layers, and old layer configs carry arguments Keras 3 no longer takes. The networks of those
scripts are plain stacks (Conv2D, MaxPooling2D, Flatten, Dense...), so the stack is rebuilt here
from the model_config JSON, keeping only the arguments that change what a layer computes. The
weights are then loaded by Keras itself: model.load_weights still reads the Keras 2 HDF5 layout,
matching the layers that have weights by their order.

Such files do not say how photos were prepared or what the classes are called, so we assume what
the classic scripts did: ImageDataGenerator(rescale=1./255) (a Rescaling layer goes in front) and
flow_from_directory's sorted folder names (predict.py --classes A,B to name them).
"""
import functools
import json
import sys
import warnings

import h5py

from .config import DATASET_DIR, TRAIN_DIR, UsageError
from .metadata import ModelInfo

# For each layer class we can rebuild, the config keys that matter for prediction (Keras 2 and 3 agree on them).
LAYER_ARGUMENTS = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "dilation_rate", "activation", "use_bias"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "GlobalAveragePooling2D": (),
    "GlobalMaxPooling2D": (),
    "Flatten": (),
    "Dense": ("units", "activation", "use_bias"),
    "Dropout": ("rate",),
    "Activation": ("activation",),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
}
DEFAULT_CLASSES = ["Cats", "Dogs"]


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def keras2_version(path):
    """The Keras version that wrote an HDF5 file if it was Keras 2, else None."""
    try:
        with h5py.File(path, "r") as file:
            version = _text(file.attrs.get("keras_version", ""))
    except OSError:
        return None
    return version if version.startswith("2.") else None


def default_class_names(count, model_path):
    """What flow_from_directory would have called the classes: Dataset/Training_Set's folders, sorted."""
    from .data import class_folders

    names = class_folders(DATASET_DIR / TRAIN_DIR)
    if len(names) == count:
        return names
    if count == 2:
        return DEFAULT_CLASSES
    raise UsageError(f"{model_path} has {count} classes but stores no names: pass them in order, as --classes A,B,C")


def load(model_path, weights_path=None, class_names=None):
    """Rebuild a Keras 2 model.h5 and load its weights (then weights.h5's, if given). Returns (model, metadata)."""
    version = keras2_version(model_path)
    with h5py.File(model_path, "r") as file:
        config = file.attrs.get("model_config")
    if config is None:
        raise UsageError(f"{model_path} holds only weights (saved by Keras {version} with save_weights): pass the "
                         "model.h5 saved with model.save() as --model and this file as --weights")
    try:
        model, warning = build(_layer_configs(json.loads(_text(config)), model_path, version), model_path)
    except UsageError:
        raise
    except Exception as error:  # a damaged config, or arguments Keras 3 rejects
        raise UsageError(f"{model_path}: could not rebuild its Keras {version} layers ({_first_line(error)}); load it with Keras 2 and retrain")
    for path in (model_path, weights_path):
        if path is None:
            continue
        try:
            model.load_weights(path)
        except Exception as error:
            raise UsageError(f"{path} does not fit the model rebuilt from {model_path} ({_first_line(error)}); "
                             "use the weights.h5 saved with that model.h5, or pass the model file itself as --weights")
    count = max(2, model.output_shape[-1])
    names = list(class_names or default_class_names(count, model_path))
    if len(names) != count:
        raise UsageError(f"--classes names {len(names)} classes but {model_path} has {count}: name each, in order")
    size = model.input_shape[1]
    print(f"note: {model_path} was saved by Keras {version}; rebuilt for Keras 3 with {size}x{size} px input, pixels "
          f"scaled by 1/255, classes {', '.join(f'{name} ({index})' for index, name in enumerate(names))} "
          "(set them with --classes)", file=sys.stderr)
    if warning:
        print(f"warning: {model_path}: {warning.format(second=names[1])}", file=sys.stderr)
    return model, ModelInfo(names, size, model=f"Keras {version} Sequential", keras_version=version)


def _layer_configs(config, model_path, version):
    """[(class name, config)] of a Sequential model, in the Keras 2.1 (list) or 2.2+ ({"layers": [...]}) layout."""
    if config.get("class_name") != "Sequential":
        raise UsageError(f"{model_path} holds a Keras {version} {config.get('class_name')} model; only Sequential models "
                         "(layers in a row, as the classic scripts build) can be rebuilt: load it with Keras 2 and retrain")
    layers = config.get("config")
    layers = layers if isinstance(layers, list) else (layers or {}).get("layers", [])
    return [(layer.get("class_name"), layer.get("config", {})) for layer in layers]


def build(layer_configs, model_path):
    """The Keras 3 model: Rescaling(1/255), then the old layers, whose output prediction.probabilities reads.

    Returns (model, warning or None).
    """
    import keras

    input_shape, layers = None, []
    for kind, config in layer_configs:
        shape = config.get("batch_input_shape") or config.get("batch_shape")
        if shape and input_shape is None:
            input_shape = tuple(shape[1:])
        if kind == "InputLayer":
            continue
        if kind not in LAYER_ARGUMENTS:
            raise UsageError(f"{model_path} uses a {kind} layer, which this toolkit cannot rebuild "
                             f"(it reads {', '.join(LAYER_ARGUMENTS)}): load it with Keras 2 and retrain")
        if config.get("data_format") == "channels_first":
            raise UsageError(f"{model_path} expects channels_first images (a Theano-era model); retrain it with train_CNN.py")
        arguments = {key: config[key] for key in LAYER_ARGUMENTS[kind] if key in config}
        if isinstance(arguments.get("axis"), list):  # tf.keras wrote BatchNormalization's axis as [3]
            arguments["axis"] = arguments["axis"][0]
        layer = getattr(keras.layers, kind)(name=config.get("name"), **arguments)
        if arguments.get("activation") == "softmax":
            layer.activation = _without_keras_softmax_warning(layer.activation)
        layers.append(layer)
    if input_shape is None or len(input_shape) != 3 or input_shape[2] != 3 or input_shape[0] != input_shape[1]:
        raise UsageError(f"{model_path} does not take square RGB images (its input shape is {input_shape}); "
                         "this toolkit reads models whose input_shape is (size, size, 3)")

    inputs = keras.Input(shape=input_shape)
    outputs = keras.layers.Rescaling(1.0 / 255, name="rescaling_as_ImageDataGenerator")(inputs)
    for layer in layers:
        outputs = layer(outputs)
    units, activation = outputs.shape[-1], _output_activation(layer_configs)
    if outputs.shape[1:] != (units,):
        raise UsageError(f"{model_path} gives {tuple(outputs.shape[1:])} outputs per photo; this toolkit reads "
                         "classifiers ending in Dense(1, sigmoid) or Dense(N, softmax)")
    warning = None
    if units == 1 and activation == "softmax":
        warning = ("its last layer is Dense(1) with softmax, which always outputs 1.0: every photo will be labelled "
                   "{second} with confidence 1.0000. The training script had a bug; retrain with sigmoid (python train_CNN.py)")
    elif activation != ("sigmoid" if units == 1 else "softmax"):
        warning = f"its last layer's activation is {activation}, not sigmoid or softmax: the confidences are not probabilities"
    return keras.Model(inputs, outputs, name="keras2"), warning


def _without_keras_softmax_warning(softmax):
    """Keras's softmax (same name, same outputs), minus the warning Keras gives, with its source
    line, at every call of a Dense(1) softmax head: load() says it in one clear line. The filter
    holds inside the call only; the process's warning filters stay as they are."""
    @functools.wraps(softmax)
    def quiet(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            return softmax(*args, **kwargs)
    return quiet


def _output_activation(layer_configs):
    """The activation applied last: an Activation layer's, or else the last Dense layer's."""
    for kind, config in reversed(layer_configs):
        if kind in ("Activation", "Dense"):
            return config.get("activation", "linear")
        if kind not in ("Dropout", "Flatten"):
            return "linear"
    return "linear"
