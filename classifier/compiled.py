"""model.tflite: model.h5 compiled for LiteRT, so that predict.py and serve.py label photos without TensorFlow.

model.h5 + weights.h5 stay the model: what train_CNN.py writes and what --model names. Beside
them, model.tflite holds the same network (prediction.inference_model: probabilities, then the
unknown score) converted for LiteRT's interpreter (XNNPACK), which starts in a tenth of a second
where TensorFlow takes seconds, and runs a photo at batch 1 faster than TensorFlow does.
Like a .pyc, it is never a second truth: it carries the sha256 of the model.h5 and weights.h5 it
was made from, and is used only while both still match (fresh); otherwise predict.py runs model.h5
with Keras as before, and writes a fresh model.tflite for next time where it may.

The file also carries model.h5's metadata (ModelInfo: classes, image size, the unknown score's
threshold), in the TFLite flatbuffer's metadata table under METADATA_NAME, so it is complete on
its own: the README's LiteRT example reads it.

The LiteRT path reads every photo with Pillow (images.open_image, decoded once, shrunk while
decoding) and resizes it with area_resize below, the same area average as tf.image.resize(method="area")
that training uses (data.read_and_resize), computed as two small matrix products.
"""
import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from . import quiet_stderr
from .metadata import ModelInfo

SUFFIX = ".tflite"
METADATA_NAME = "classifier"   # the flatbuffer metadata entry holding {"source_sha256", "model_info"}
READ_BLOCK = 4 * 2**20   # bytes hashed at a time


def compiled_path(model_path):
    """model.tflite beside model.h5 (runs/x/model.h5 -> runs/x/model.tflite)."""
    return Path(model_path).with_suffix(SUFFIX)


def source_sha256(model_path, weights_path):
    """The sha256 of model.h5's bytes then weights.h5's (the same file once, when the weights are inside model.h5)."""
    digest = hashlib.sha256()
    paths = [Path(model_path)] + ([Path(weights_path)] if Path(weights_path).resolve() != Path(model_path).resolve() else [])
    for path in paths:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(READ_BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()


def read_metadata(path):
    """The METADATA_NAME entry of a .tflite file as a dict, or None if it has none or cannot be read."""
    try:
        from ai_edge_litert import schema_py_generated as schema

        data = Path(path).read_bytes()
        model = schema.Model.GetRootAs(data, 0)
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if entry.Name() == METADATA_NAME.encode():
                return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except Exception:  # a cut or foreign file, or no LiteRT: not fresh, and predict.py falls back to model.h5
        return None
    return None


class CompiledModel:
    """A fresh model.tflite in LiteRT's interpreter: __call__(float32 images) -> (probabilities, unknown
    scores or None). prediction.predict_batch calls it, and adds the mirror images for --tta."""

    def __init__(self, path, info, threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.path, self.info = Path(path), info
        with quiet_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count())
        # The `serve` signature of the SavedModel it was converted from: images -> output_0 (the
        # probabilities), output_1 (the unknown score, for a model that has one). It resizes its
        # input to each batch's size.
        self.run = interpreter.get_signature_runner()
        self.started = False

    def __call__(self, images):
        from .prediction import probabilities

        # The first call sets XNNPACK up, and says so on stderr.
        with contextlib.nullcontext() if self.started else quiet_stderr():
            results = self.run(images=np.ascontiguousarray(images, dtype=np.float32))
        self.started = True
        return probabilities(results["output_0"]), results["output_1"][:, 0].astype(float) if "output_1" in results else None


def fresh_metadata(model_path, weights_path):
    """(the metadata of model.tflite beside model_path, "fresh") if it was made from these very
    model.h5 and weights.h5; else (None, why, in a few words: no file; no LiteRT; unreadable; stale)."""
    path = compiled_path(model_path)
    if not path.is_file():
        return None, f"no {path.name}"
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        return None, "the LiteRT interpreter is not installed (pip install ai-edge-litert)"
    metadata = read_metadata(path)
    if metadata is None:
        return None, f"{path.name} has no metadata of this toolkit"
    if metadata.get("source_sha256") != source_sha256(model_path, weights_path):
        return None, f"{path.name} is stale: it was made from another model.h5 or weights.h5"
    return metadata, "fresh"


def is_fresh(model_path, weights_path):
    """Whether model.tflite beside model_path was made from these very model.h5 and weights.h5."""
    return fresh_metadata(model_path, weights_path)[0] is not None


def load_fresh(model_path, weights_path):
    """The CompiledModel of model_path if model.tflite beside it was made from these very files;
    else None, and why (fresh_metadata)."""
    metadata, why = fresh_metadata(model_path, weights_path)
    if metadata is None:
        return None, why
    path = compiled_path(model_path)
    known = {name: value for name, value in metadata["model_info"].items() if name in ModelInfo.__dataclass_fields__}
    try:
        return CompiledModel(path, ModelInfo(**known)), "fresh"
    except (ValueError, RuntimeError) as error:
        return None, f"{path.name} could not be loaded ({error})"


def compile_model(model, info, model_path, weights_path, target=None):
    """Write model.tflite (or target) for model, the network loaded from model_path and weights_path,
    and its ModelInfo; atomically, so a reader never sees half a file. Needs TensorFlow. Returns the path."""
    from . import artifacts

    target = Path(target or compiled_path(model_path))
    data = flatbuffer(model, info, model_path, weights_path)
    with artifacts.atomic_path(target) as temporary:
        Path(temporary).write_bytes(data)
    return target


def flatbuffer(model, info, model_path, weights_path):
    """The .tflite bytes of prediction.inference_model(model, info), with the sha256 of the files it
    comes from and the ModelInfo in its metadata. train_CNN.py --export tflite writes the same.

    Converted from the frozen graph of one tf.function, not from a SavedModel: the same ops, made in
    a fifth of the time (the shipped model: 1.7 s against 7.5 s), since nothing is
    written, traced again and read back. That route leaves out the SignatureDef a SavedModel gives,
    which with_metadata adds.
    """
    from . import import_tensorflow
    from .export import serving_function
    from .prediction import inference_model

    tf = import_tensorflow()
    function = serving_function(inference_model(model, info), info.image_size).get_concrete_function()
    converted = tf.lite.TFLiteConverter.from_concrete_functions([function]).convert()
    return with_metadata(converted, {"source_sha256": source_sha256(model_path, weights_path), "model_info": info.to_dict()})


def with_metadata(flatbuffer, metadata):
    """The .tflite bytes with metadata (a dict, as JSON) added to the flatbuffer's metadata table, and
    the `serving_default` signature a SavedModel's conversion gives: images -> output_0, output_1 (the
    converter keeps the function's inputs and outputs in order: the keys of serving_function's dict)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def tensor_map(name, index):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index
        return entry

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    if not model.signatureDefs:
        signature = schema.SignatureDefT()
        signature.signatureKey, signature.subgraphIndex = "serving_default", 0
        signature.inputs = [tensor_map("images", graph.inputs[0])]
        signature.outputs = [tensor_map(f"output_{position}", index) for position, index in enumerate(graph.outputs)]
        model.signatureDefs = [signature]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    builder = flatbuffers.Builder(len(flatbuffer) + 2**16)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def area_resize(pixels, size):
    """uint8 (height, width, 3) -> uint8 (size, size, 3): tf.image.resize(method="area"), then rounded
    half to even, as data.read_and_resize does. Each output pixel is the sum of the input pixels
    under it, each weighted by how much of it lies under, times 1 / (scale_y * scale_x). As in
    TensorFlow, the weights are computed in float32 and each row is summed across, then the rows
    down, so the two agree to the last level but for sums within a rounding error of .5. An output
    pixel covers a few input pixels per axis (its taps), so each pass is a gather and a small sum."""
    height, width = pixels.shape[:2]
    row_index, row_weights, row_scale = _area_taps(height, size)
    column_index, column_weights, column_scale = _area_taps(width, size)
    pixels = pixels.astype(np.float32)
    across = _weighted_taps(pixels, column_index, column_weights, axis=1)   # (height, size, 3)
    resized = _weighted_taps(across, row_index, row_weights, axis=0)        # (size, size, 3)
    resized *= np.float32(1.0 / float(row_scale * column_scale))
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


def _weighted_taps(values, index, weights, axis):
    """Along axis, each output is its taps' values times their weights, added in order: one pass per tap."""
    shape = (1, -1, 1) if axis == 1 else (-1, 1, 1)
    total = np.take(values, index[:, 0], axis=axis) * weights[:, 0].reshape(shape)
    for tap in range(1, index.shape[1]):
        total += np.take(values, index[:, tap], axis=axis) * weights[:, tap].reshape(shape)
    return total


@functools.lru_cache(maxsize=64)
def _area_taps(length, size):
    """(index, weights, scale) of one axis: for each output pixel the input pixels it covers (size, taps)
    and their weights (0 for padding), from the dense _area_weights."""
    dense, scale = _area_weights(length, size)
    taps = max(1, int((dense > 0).sum(axis=1).max()))
    index, weights = np.zeros((size, taps), np.intp), np.zeros((size, taps), np.float32)
    for out, row in enumerate(dense):
        covered = np.flatnonzero(row)
        index[out, :len(covered)], weights[out, :len(covered)] = covered, row[covered]
    return index, weights, scale


@functools.lru_cache(maxsize=64)
def _area_weights(length, size):
    """((size, length) float32 weights, the float32 scale length / size). Output i covers input
    [i * scale, (i + 1) * scale): a whole input pixel weighs 1, one cut by an edge the part inside."""
    scale = np.float32(length) / np.float32(size)
    weights = np.zeros((size, length), np.float32)
    for out in range(size):
        start, end = np.float32(out) * scale, np.float32(out + 1) * scale
        for index in range(int(np.floor(start)), int(np.ceil(end))):
            if index < start:
                weight = scale if index + 1 > end else np.float32(index + 1) - start
            else:
                weight = end - np.float32(index) if index + 1 > end else np.float32(1)
            weights[out, min(max(index, 0), length - 1)] += weight
    return weights, scale


def read_for_model(source, image_size, name=None):
    """One photo (a path, or bytes) as the compiled model takes it, read once: Pillow's pixels
    (images.pillow_pixels: upright, big JPEGs shrunk while decoding), area-resized; uint8. Raises
    BadImage naming it (or name), as data.load_image does."""
    from .images import pillow_pixels

    return area_resize(pillow_pixels(source, image_size, name), image_size)

