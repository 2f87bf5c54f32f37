"""How many photos do I need? Test_Set accuracy and training time of each model's default recipe,
trained on 25, 50, 100, 200 and 500 photos per class.

    python benchmarks/data_size.py                  # cnn and efficientnet-lite0, 1,000 test photos (about 30 min)
    python benchmarks/data_size.py --per-class 100 --models efficientnet-lite0
    python benchmarks/data_size.py --per-class 5 --test-images 20 --epochs 1 --plot /tmp/check.png   # a quick check

Each run is classifier.training.train(RunConfig(...)), as `python train_CNN.py --arch NAME` runs it,
with the model's defaults (epochs, image size, learning rate, phases) unless --epochs is given.
Its data: N photos per class from the shared Training_Set (seeded; each smaller sample is part of
the larger ones), of which train() holds out 10 % to pick the epoch kept, as it always does, and
--test-images photos of the shared Test_Set (the same ones for every run; 0: all 4,999). They are
linked, not copied, into a temporary folder. Training minutes are those train() reports (the
fit phases); "run min" is the whole call: the photo check, building the model, training and
predicting the test photos.

The table is printed at the end, and the accuracy per photos per class is drawn in --plot. Beside
the accuracy: the expected calibration error on those Test_Set photos (reports/summary.md), the
share of them the unknown score flags, and the share of --other photos (none of the classes;
default ../shared/datasets/neither) it flags: how well "unknown" works with few photos, and for
the from-scratch models.
"""
import argparse
import contextlib
import io
import re
import tempfile
import time
from pathlib import Path

import common
from classifier import config

# What the default should reach: photos per class -> (Test_Set accuracy, training minutes on 2 CPU cores).
GOALS = {25: (0.97, 2.0), 100: (0.985, 3.0)}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", default="10,25,50,100,200,500", help="training photos per class, comma-separated (default: %(default)s)")
    parser.add_argument("--models", default=f"cnn,{config.DEFAULT_ARCH}", help="the --arch names to train (default: %(default)s)")
    parser.add_argument("--test-images", type=int, default=1000, help="Test_Set photos scored, sampled; 0: all (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=0, help="epochs for every model (default: 0, each model's own)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="sampling, split, shuffling and weights (default: %(default)s)")
    parser.add_argument("--plot", default=str(common.PROJECT / "docs" / "data_size.png"), help="the PNG to draw (default: docs/data_size.png)")
    parser.add_argument("--other", default=str(common.PROJECT.parent / "shared" / "datasets" / "neither"),
                        help="photos of none of the classes, to measure the unknown score on (default: %(default)s; '' for none)")
    args = parser.parse_args()
    args.per_class = sorted(int(count) for count in args.per_class.split(","))
    args.models = args.models.split(",")
    return args


def train_once(data_dir, output, arch, epochs, seed):
    """One train() run, its chatter kept out of the report; (Test_Set accuracy, training minutes, run minutes,
    Test_Set ECE, share of Test_Set flagged unknown)."""
    import keras
    from classifier.config import RunConfig
    from classifier.training import train

    keras.backend.clear_session()  # free the previous run's model and graphs
    chatter = io.StringIO()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(chatter):
            accuracy = train(RunConfig(data=str(data_dir), output=str(output), arch=arch, epochs=epochs, seed=seed))
    except BaseException:
        print(chatter.getvalue())  # what train() said before it failed
        raise
    run_minutes = (time.perf_counter() - started) / 60
    reported = re.search(r"training took ([\d.]+) min", chatter.getvalue())
    flagged = re.search(r"([\d.]+)% of its photos would be labelled unknown", chatter.getvalue())
    ece = re.search(r"expected calibration error ([\d.]+)%", Path(output, config.REPORTS_DIR, "summary.md").read_text())
    return (accuracy, float(reported.group(1)) if reported else float("nan"), run_minutes,
            float(ece.group(1)) / 100 if ece else float("nan"), float(flagged.group(1)) / 100 if flagged else float("nan"))


def other_flagged(model_path, folder):
    """The share of the photos in folder (none of the model's classes) that predict.py labels unknown."""
    if not folder or not Path(folder).is_dir():
        return float("nan")
    from classifier.images import BadImage
    from classifier.prediction import load_classifier, predict_files

    with contextlib.redirect_stderr(io.StringIO()):
        model, info = load_classifier(model_path)
    paths, _ = common.find_images([Path(folder)])
    results = [result for result in predict_files(model, info, paths, 32) if not isinstance(result, BadImage)]
    return sum(result.unknown for result in results) / max(1, len(results))


def plot(results, args, test_count):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4))
    for arch in args.models:
        counts = [count for count in args.per_class if (count, arch) in results]
        axis.plot(counts, [100 * results[count, arch][0] for count in counts], marker="o", label=arch)
    for count, (accuracy, _) in GOALS.items():
        axis.plot([count], [100 * accuracy], marker="*", markersize=12, color="grey", linestyle="none",
                  label="goals" if count == min(GOALS) else None)
    axis.set_xscale("log")
    axis.set_xticks(args.per_class, [str(count) for count in args.per_class])
    axis.minorticks_off()
    axis.set(xlabel="training photos per class (10 % of them held out for validation)",
             ylabel=f"Test_Set accuracy, % ({test_count} photos)", title="Cats vs dogs: accuracy against training photos")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.plot, dpi=100)
    plt.close(figure)


def main():
    args = parse_args()
    common.require_shared_dataset()
    common.quiet_tensorflow()
    test_count = args.test_images or None
    print(f"Data size: {', '.join(args.models)} on {', '.join(map(str, args.per_class))} photos per class; "
          f"{args.test_images or 'all'} Test_Set photos; {common.machine_line()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-data-size-") as workdir:
        for count in args.per_class:
            data_dir = common.linked_dataset(Path(workdir, f"data-{count}"), 2 * count, test_count, args.seed)
            for arch in args.models:
                run = Path(workdir, f"run-{arch}-{count}")
                results[count, arch] = (*train_once(data_dir, run, arch, args.epochs, args.seed),
                                        other_flagged(run / config.MODEL_FILE, args.other))
                accuracy, minutes, run_minutes, *_ = results[count, arch]
                print(f"  {count} per class, {arch}: {accuracy:.2%} in {minutes:.1f} min ({run_minutes:.1f} min in all)", flush=True)
            tested = len(common.find_images([data_dir / config.TEST_DIR])[0])

    print(f"\n{'photos per class':>16}  {'model':<20}{'Test_Set acc.':>14}{'training min':>14}{'run min':>9}"
          f"{'ECE':>8}{'unknown: Test_Set':>19}{'unknown: other':>16}")
    for (count, arch), (accuracy, minutes, run_minutes, ece, flagged, other) in results.items():
        print(f"{count:>16}  {arch:<20}{accuracy:>14.2%}{minutes:>14.1f}{run_minutes:>9.1f}{ece:>8.2%}{flagged:>19.1%}{other:>16.1%}")
    epochs = args.epochs or "each model's default"
    print(f"(Test_Set accuracy on {tested} photos{'' if args.test_images else ', all of them'}; epochs: {epochs})")
    for count, (goal, goal_minutes) in GOALS.items():
        if (count, config.DEFAULT_ARCH) in results:
            accuracy, minutes, *_ = results[count, config.DEFAULT_ARCH]
            met = accuracy >= goal and minutes <= goal_minutes
            print(f"goal, {config.DEFAULT_ARCH} >= {goal:.1%} with {count} photos per class in <= {goal_minutes:g} min "
                  f"of training: {'met' if met else 'NOT met'} ({accuracy:.2%}, {minutes:.1f} min)")
    plot(results, args, tested)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
