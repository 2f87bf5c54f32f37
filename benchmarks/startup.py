"""Start-up time: wall time of `python predict.py ONE_PHOTO` against a bare `python -c "import
tensorflow"` in the same run (the floor any Keras script pays), plus `predict.py --help`.

    python benchmarks/startup.py               # median of 5 runs each (about 1 min)
    python benchmarks/startup.py --runs 2

The model is the default make_model("cnn", config.IMAGE_SIZE) with fresh weights, saved to a
temporary folder as train_CNN.py saves it (classifier.artifacts.save), so predict.py loads a real
model.h5 and weights.h5. The photo is one of the shared cats-and-dogs photos. The commands run in
turn, N rounds, so a burst of other work on the machine slows all of them alike; the figure is the
median of each.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile

import common
from classifier import config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each command; the median is reported (default: %(default)s)")
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
    common.quiet_tensorflow()

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as workdir:
        model_path, weights_path = common.save_untrained_model(workdir)
        predict = [sys.executable, str(common.PROJECT / "predict.py")]
        commands = {
            'python -c "import tensorflow" (anchor)': [sys.executable, "-c", "import tensorflow"],
            "python predict.py ONE_PHOTO": predict + ["--model", str(model_path), "--weights", str(weights_path), str(photo)],
            "python predict.py --help": predict + ["--help"],
        }
        times = {label: [] for label in commands}
        for _ in range(args.runs):
            for label, command in commands.items():
                times[label].append(wall_seconds(command))

    anchor = statistics.median(next(iter(times.values())))
    print(f"\n{'command':<42}{'median s':>10}{'min s':>8}{'vs anchor':>11}")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"{label:<42}{median:>10.2f}{min(values):>8.2f}{median / anchor:>10.2f}x")


if __name__ == "__main__":
    main()
