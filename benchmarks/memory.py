"""Peak memory: resident set size (ru_maxrss) of a training run on the whole shared data set and
of predict.py labelling 10,000 photos, each in its own process, against a stated bound (exit code
1 if a run goes over it), with a bare `python -c "import tensorflow"` measured in the same run as
the floor.

    python benchmarks/memory.py                  # all 17,999 + 4,999 shared photos, 10,000 to label (about 3-5 min)
    python benchmarks/memory.py --train-images 400 --predict-images 200 --steps 2   # a quick check
    python benchmarks/memory.py --bound-gb 4

Training is the memory-heavy part: train_CNN.py caches every decoded photo (uint8, at
config.IMAGE_SIZE) and shuffles over the whole set. The training process here does what
classifier.training.train does up to the first epoch's end -- the Pillow pre-scan, both pipelines,
make_model + compile_model -- then fits --steps batches (the full shuffle buffer means the whole
training set is decoded and cached before the first step) and validates on the whole Test_Set
(which caches it too). Saving files and plotting are left out.

Prediction runs the real predict.py on a folder of links to --predict-images shared photos (from
Training_Set and then Test_Set; nothing is copied), with the default cnn saved with fresh weights,
its output discarded.
"""
import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import common
from classifier import config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-images", type=int, default=0,
                        help="training photos, a quarter as many test photos, sampled (default: 0, the whole shared set)")
    parser.add_argument("--predict-images", type=int, default=10000, help="photos predict.py labels (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=5, help="training steps after the caches are full (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=config.IMAGE_SIZE, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="(default: %(default)s)")
    parser.add_argument("--bound-gb", type=float, default=8.0, help="the memory each run should stay under (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="sampling (default: %(default)s)")
    parser.add_argument("--train-child", metavar="DATA", help=argparse.SUPPRESS)  # internal: be the training process
    return parser.parse_args()


def train_child(data_dir, image_size, batch_size, steps, seed):
    """The training process: train()'s data and model set-up, then a few steps and one validation."""
    from classifier.data import check_layout, image_dataset
    from classifier.training import compile_model

    class_names = check_layout(data_dir)
    train_ds, count, _ = image_dataset(Path(data_dir, config.TRAIN_DIR), class_names, image_size, batch_size, shuffle=True, seed=seed)
    test_ds, _, _ = image_dataset(Path(data_dir, config.TEST_DIR), class_names, image_size, batch_size)
    from classifier.model import make_model

    model = make_model("cnn", image_size)
    compile_model(model, math.ceil(count / batch_size), config.EPOCHS, config.LEARNING_RATE)
    model.fit(train_ds, validation_data=test_ds, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)


def sampled_dataset(workdir, train_images, seed):
    """A Training_Set/Test_Set folder of links to train_images + train_images // 4 shared photos."""
    for split, count in ((config.TRAIN_DIR, train_images), (config.TEST_DIR, max(2, train_images // 4))):
        chosen = common.sample_photos(common.SHARED_DATASET / split, count, seed)
        common.link_photos(chosen, Path(workdir, "data", split))
    return Path(workdir, "data")


def predict_folder(workdir, count):
    """A folder of links to `count` shared photos, Training_Set first."""
    photos = [path for split in (config.TRAIN_DIR, config.TEST_DIR)
              for path in common.find_images([common.SHARED_DATASET / split])[0]][:count]
    if len(photos) < count:
        sys.exit(f"error: only {len(photos)} shared photos, {count} asked for")
    folder = Path(workdir, "predict")
    folder.mkdir()
    for index, path in enumerate(photos):
        (folder / f"{index:06d}_{path.name}").symlink_to(path.resolve())
    return folder


def measured(label, command, show_errors=True):
    code, seconds, peak = common.run_measured(command, stdout=subprocess.DEVNULL, stderr=None if show_errors else subprocess.DEVNULL)
    if code not in (config.EXIT_OK, config.EXIT_SOME_INPUTS_BAD):  # 1: some unreadable photos, named on stderr
        sys.exit(f"error: {label} exited with {code} (its error is above)")
    return seconds, peak


def main():
    args = parse_args()
    if args.train_child:
        return train_child(args.train_child, args.image_size, args.batch_size, args.steps, args.seed)
    common.require_shared_dataset()
    print(f"Peak memory against a bound of {args.bound_gb:g} GB; {common.machine_line()}")
    common.quiet_tensorflow()

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        data = sampled_dataset(workdir, args.train_images, args.seed) if args.train_images else common.SHARED_DATASET
        counts = [len(common.find_images([data / split])[0]) for split in (config.TRAIN_DIR, config.TEST_DIR)]
        model_path, weights_path = common.save_untrained_model(workdir, image_size=args.image_size)
        folder = predict_folder(workdir, args.predict_images)
        runs = {
            'python -c "import tensorflow" (floor)': [sys.executable, "-c", "import tensorflow"],
            f"training: {counts[0]} + {counts[1]} photos cached, {args.image_size} px, {args.steps} steps":
                [sys.executable, __file__, "--train-child", str(data), "--image-size", str(args.image_size),
                 "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--seed", str(args.seed)],
            f"predict.py: {args.predict_images} photos":
                [sys.executable, str(common.PROJECT / "predict.py"), "--model", str(model_path),
                 "--weights", str(weights_path), str(folder)],
        }
        # The bare import's C++ start-up lines would clutter the report; the other runs' warnings should show.
        results = {label: measured(label, command, show_errors=index > 0) for index, (label, command) in enumerate(runs.items())}

    bound_mb = args.bound_gb * 1024
    floor = next(iter(results.values()))[1]
    print(f"\n{'run':<62}{'wall s':>8}{'peak MB':>9}{'vs floor':>10}{'of bound':>10}")
    for label, (seconds, peak) in results.items():
        verdict = "" if peak <= bound_mb else "  OVER THE BOUND"
        print(f"{label:<62}{seconds:>8.0f}{peak:>9.0f}{peak / floor:>9.1f}x{peak / bound_mb:>10.0%}{verdict}")
    cached_mb = counts[0] * args.image_size ** 2 * 3 / 2**20
    print(f"(the training cache alone holds {counts[0]} x {args.image_size}x{args.image_size}x3 bytes = {cached_mb:.0f} MB)")
    return 1 if any(peak > bound_mb for _, peak in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
