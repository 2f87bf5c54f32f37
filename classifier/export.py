"""`train_CNN.py --export FORMAT`: the trained model in another format, for serving or for phones.

    keras       MODEL.keras         Keras 3's own format: keras.models.load_model("model.keras")
    savedmodel  MODEL_savedmodel/   TensorFlow SavedModel (TF Serving, tf.saved_model.load)
    tflite      MODEL.tflite        TensorFlow Lite / LiteRT, for phones and small boards
    onnx        MODEL.onnx          ONNX, for ONNX Runtime (onnxruntime) and other ONNX runtimes

Every format takes what model.h5 takes: float32 RGB images of shape (N, size, size, 3) with values
0-255 (the model scales them itself), and returns (N, classes): one probability per class, then,
for a model that stores an unknown score (open_set.py), (N, 1): that score, which labels a photo
`unknown` above the threshold in the metadata. The exported model is prediction.inference_model,
the one predict.py runs. A MODEL_metadata.json beside it names the classes, the image size and the
threshold, which the formats cannot hold.
"""
import json
import shutil
import tempfile
from pathlib import Path

from . import artifacts, import_tensorflow
from .config import UsageError

FORMATS = ("keras", "savedmodel", "tflite", "onnx")


def export(model_path, fmt, output_dir, overwrite=False):
    """Write the model of model_path in format fmt into output_dir; returns the path written."""
    stem, output = Path(model_path).stem, Path(output_dir)
    target = output / {"keras": f"{stem}.keras", "savedmodel": f"{stem}_savedmodel", "tflite": f"{stem}.tflite",
                       "onnx": f"{stem}.onnx"}[fmt]
    if target.exists() and not overwrite:
        raise UsageError(f"{target} already exists: pass --overwrite to replace it, or --output DIR to write elsewhere")
    from .prediction import inference_model

    import_tensorflow()
    network, info = artifacts.load(model_path)
    model = inference_model(network, info)
    print(f"Exporting {model_path} (weights: {artifacts.weights_beside(model_path)})")
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{stem}-export-", dir=output) as scratch:
            written = Path(scratch, target.name)
            if fmt == "keras":
                model.save(written)
            elif fmt == "savedmodel":
                save_inference_graph(model, info.image_size, written)
            elif fmt == "onnx":
                save_onnx(model, info.image_size, written)
            else:  # the compiled form predict.py runs (compiled.py), with the metadata in the file
                from .compiled import flatbuffer
                written.write_bytes(flatbuffer(network, info, model_path, artifacts.weights_beside(model_path)))
            if target.is_dir():
                shutil.rmtree(target)
            written.replace(target)  # only a finished export replaces an earlier one
        sidecar = output / f"{stem}_metadata.json"
        outputs = network.output_shape[-1]
        meaning = f"(N, {outputs}): probability of each class, in the order {', '.join(info.class_names)}" if outputs > 1 else \
            f"(N, 1): probability of {info.class_names[1]}"
        if info.scorer is not None:
            meaning += (f"; then (N, 1): the unknown score, above {info.scorer.threshold:.6g} (open_set.threshold here) "
                        "the photo is of none of the classes")
        sidecar.write_text(json.dumps({**info.to_dict(), "input": "float32 RGB, shape (N, size, size, 3), values 0-255",
                                       "output": meaning}, indent=2) + "\n")
    except OSError as error:
        raise UsageError(f"cannot write to {output} ({error.strerror or error}): pass --output DIR with a writable folder")
    print(f"Wrote {target} (and {sidecar.name}: class names {', '.join(info.class_names)}, "
          f"{info.image_size}x{info.image_size} px)")
    return target


def save_inference_graph(model, image_size, path):
    """A SavedModel whose `serve` signature runs the model with training=False.

    model.export() alone would trace the augmentation layers in training mode (their default when
    called outside fit/predict), so the exported model would flip and zoom every photo it is given.
    """
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda images: model(images, training=False), input_signature=[images_spec(image_size)])
    archive.write_out(str(path), verbose=False)


def save_onnx(model, image_size, path):
    """An ONNX file of the model called with training=False, its outputs named output_0 (and
    output_1) as in the SavedModel's signature.

    Keras's model.export(format="onnx") converts with tf2onnx too, but traces the model as
    model.export() does, augmentation on: tf2onnx cannot convert its random ops and writes a file
    that ONNX Runtime refuses (no StatelessRandomUniformV2 op).
    """
    import tf2onnx

    tf2onnx.convert.from_function(serving_function(model), input_signature=[images_spec(image_size)], output_path=str(path))


def serving_function(model, image_size=None):
    """model called with training=False as a tf.function returning {"output_0": ..., "output_1": ...}
    (tf2onnx names a dict's outputs by its keys, else Identity:0, Identity_1:0); with image_size, its
    input signature is images_spec's."""
    tf = import_tensorflow()

    def serve(images):
        return {f"output_{index}": output for index, output in enumerate(tf.nest.flatten(model(images, training=False)))}
    return tf.function(serve, input_signature=[images_spec(image_size)] if image_size else None)


def images_spec(image_size):
    """The input of the SavedModel and ONNX graphs: a batch of any size of photos, named `images`."""
    tf = import_tensorflow()
    return tf.TensorSpec((None, image_size, image_size, 3), tf.float32, name="images")
