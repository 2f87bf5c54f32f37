"""Start-up time: wall time of `python predict.py ONE_PHOTO` against a bare `python -c "import
tensorflow"` in the same run (the floor any Keras script pays), with both engines: LiteRT (a fresh
model.tflite beside model.h5, no TensorFlow; goal: at most 0.3x the bare import) and Keras
(--no-compiled). Also `predict.py --help`, which never imports TensorFlow.

    python benchmarks/startup.py                                # median of 5 runs each (about 1-2 min)
    python benchmarks/startup.py --model runs/shipped/model.h5 --runs 3

Without --model, the model is an untrained default model (ImageNet weights and a fresh head)
saved as train_CNN.py saves it, so predict.py loads a real model.h5 and weights.h5 of the right
size; a model without a fresh model.tflite beside it gets one first, as predict.py would write it.
The photo is a shared Test_Set photo. The commands run in turn, --runs rounds, so a burst of other
work on the machine slows all of them alike; the figure is the median of each.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile

import common
from classifier import config

GOAL = 0.3  # predict.py ONE_PHOTO (LiteRT) against the bare import


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each command; the median is reported (default: %(default)s)")
    parser.add_argument("--model", metavar="FILE", help="a model.h5 from train_CNN.py (default: an untrained default model)")
    return parser.parse_args()


def wall_seconds(command):
    """Run a command with its output discarded; its wall time (fails loudly if it fails)."""
    code, seconds, _ = common.run_measured(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if code != 0:
        sys.exit(f"error: {' '.join(command)} exited with {code}; run it by hand to see why")
    return seconds


def main():
    args = parse_args()
    common.require_shared_dataset()
    photo = common.find_images([common.SHARED_DATASET / config.TEST_DIR])[0][0]
    print(f"Start-up time: median of {args.runs} runs; {common.machine_line()}")

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as workdir:
        model = common.model_file(args.model, workdir)
        predict = [sys.executable, str(common.PROJECT / "predict.py")]
        wall_seconds(predict + ["--model", str(model), str(photo)])  # writes model.tflite if it is missing or stale
        commands = {
            'python -c "import tensorflow" (anchor)': [sys.executable, "-c", "import tensorflow"],
            "python predict.py ONE_PHOTO (LiteRT)": predict + ["--model", str(model), str(photo)],
            "python predict.py --no-compiled ONE_PHOTO (Keras)": predict + ["--no-compiled", "--model", str(model), str(photo)],
            "python predict.py --help": predict + ["--help"],
        }
        times = {label: [] for label in commands}
        for _ in range(args.runs):
            for label, command in commands.items():
                times[label].append(wall_seconds(command))

    medians = {label: statistics.median(values) for label, values in times.items()}
    anchor = next(iter(medians.values()))
    print(f"\n{'command':<52}{'median s':>10}{'min s':>8}{'vs anchor':>11}")
    for label, values in times.items():
        print(f"{label:<52}{medians[label]:>10.2f}{min(values):>8.2f}{medians[label] / anchor:>10.2f}x")
    ratio = medians["python predict.py ONE_PHOTO (LiteRT)"] / anchor
    print(f"goal: predict.py ONE_PHOTO <= {GOAL}x the bare import: {'met' if ratio <= GOAL else 'NOT met'} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
