"""What post-training int8 quantization of model.tflite would buy: speed, size, accuracy and the unknown answer.

    python benchmarks/quantize.py                          # the shipped model, 1,000 Test_Set photos
    python benchmarks/quantize.py --test-photos 200 --calibration-photos 50   # a quick check

It converts the model as compiled.py does, then again with TFLite's int8 post-training
quantization (Optimize.DEFAULT with a representative dataset: --calibration-photos training photos,
read as predict.py reads them; the float32 input and outputs are kept, so predict.py could run
either), and compares the two side by side in one run: file size, images/s of the interpreter
alone on decoded tensors, Test_Set accuracy, and the share of Test_Set and of ../shared/datasets/neither
labelled unknown at the model's threshold. The default stays float32 unless int8 loses at most
0.05 points of accuracy and keeps the unknown answer's rates (the goal the compiled-model issue set).
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import common
from common import NEITHER, PROJECT, SHARED_DATASET


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(PROJECT / "model.h5"), help="model.h5 (default: the shipped one)")
    parser.add_argument("--test-photos", type=int, default=1000, help="Test_Set photos scored (default: %(default)s)")
    parser.add_argument("--calibration-photos", type=int, default=200, help="training photos for the int8 ranges (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def convert(model, info, int8_photos=None):
    """The .tflite bytes of the inference model: float32, or int8 calibrated on int8_photos (uint8 arrays)."""
    from classifier import import_tensorflow
    from classifier.export import save_inference_graph
    from classifier.prediction import inference_model

    tf = import_tensorflow()
    with tempfile.TemporaryDirectory() as scratch:
        save_inference_graph(inference_model(model, info), info.image_size, Path(scratch, "savedmodel"))
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(scratch, "savedmodel")))
        if int8_photos is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([photo[None].astype(np.float32)] for photo in int8_photos)
        return converter.convert()


def scores(run, images, batch_size=32):
    """(probabilities, unknown scores) of the interpreter's signature runner on images, batch by batch."""
    probabilities, unknown = [], []
    for start in range(0, len(images), batch_size):
        outputs = run(images=images[start:start + batch_size].astype(np.float32))
        probabilities.append(outputs["output_0"])
        unknown.append(outputs["output_1"][:, 0])
    return np.concatenate(probabilities), np.concatenate(unknown)


def main():
    args = parse_args()
    common.require_shared_dataset()
    common.quiet_tensorflow()
    print(common.machine_line())
    from ai_edge_litert.interpreter import Interpreter

    from classifier.compiled import read_for_model
    from classifier.prediction import load_classifier

    model, info = load_classifier(args.model, compiled=False)
    size, threshold = info.image_size, info.open_set["threshold"]
    read = lambda paths: np.stack([read_for_model(path, size) for path in paths])  # noqa: E731
    chosen = common.sample_photos(SHARED_DATASET / "Test_Set", args.test_photos, args.seed)
    test = read([path for paths in chosen.values() for path in paths])
    truth = np.array([info.class_names.index(name) for name, paths in chosen.items() for _ in paths])
    neither = read(common.find_images([NEITHER])[0]) if NEITHER.is_dir() else np.zeros((0, size, size, 3), np.uint8)
    calibration = common.sample_photos(SHARED_DATASET / "Training_Set", args.calibration_photos, args.seed + 1)
    calibration = read([path for paths in calibration.values() for path in paths])

    rows = {}
    for name, photos in (("float32 (the default)", None), ("int8 (post-training)", calibration)):
        started = time.perf_counter()
        data = convert(model, info, photos)
        minutes = (time.perf_counter() - started) / 60
        run = Interpreter(model_content=data).get_signature_runner()
        scores(run, test[:32])  # warm-up
        started = time.perf_counter()
        probabilities, unknown = scores(run, test)
        rate = len(test) / (time.perf_counter() - started)
        _, other = scores(run, neither) if len(neither) else (None, np.zeros(0))
        rows[name] = (len(data) / 1e6, rate, np.mean(probabilities.argmax(1) == truth), np.mean(unknown > threshold),
                      np.mean(other > threshold) if len(other) else float("nan"), minutes, probabilities)
    print(f"\n{'':<24}{'MB':>7}{'images/s':>10}{'accuracy':>10}{'unknown: Test_Set':>19}{'unknown: neither':>18}{'convert min':>13}")
    for name, (megabytes, rate, accuracy, flagged, other, minutes, _) in rows.items():
        print(f"{name:<24}{megabytes:>7.1f}{rate:>10.1f}{accuracy:>10.2%}{flagged:>19.2%}{other:>18.2%}{minutes:>13.1f}")
    (_, _, float_accuracy, *_, float_probabilities), (_, _, int8_accuracy, *_, int8_probabilities) = rows.values()
    print(f"({len(test)} Test_Set photos; the interpreter alone, batch 32; largest probability change "
          f"{np.abs(float_probabilities - int8_probabilities).max():.4f}; accuracy {100 * (int8_accuracy - float_accuracy):+.2f} points)")


if __name__ == "__main__":
    main()
