"""Peak memory: resident set size (ru_maxrss) of a training run on the whole shared data set and
of predict.py labelling 10,000 photos, each in its own process, against a stated bound (exit code
1 if a run goes over it), with a bare `python -c "import tensorflow"` measured in the same run as
the floor.

    python benchmarks/memory.py                  # all 17,999 + 4,999 shared photos, 10,000 to label (about 10 min)
    python benchmarks/memory.py --train-images 400 --predict-images 200 --steps 2   # a quick check
    python benchmarks/memory.py --bound-gb 4 --arch cnn

Training is the memory-heavy part. For the pretrained default, train() keeps the frozen blocks'
output for every training photo and its mirror image and for the validation photos (float16:
2 x 30 KB a training photo at 288 px, features.py); a from-scratch model keeps every decoded photo
(uint8 at its image size: 27 KB at 96 px). Both shuffle over the whole set. The training process
here does what classifier.training.train does up to the first epoch's end -- the Pillow check,
the validation split, make_model, training.data_for_fit (the frozen pass, or the photo pipelines),
the first phase -- then fits --steps batches (the full shuffle buffer means the whole set is
read before the first step) and validates once. Test_Set, saving files and plotting are left out.

Prediction runs the real predict.py on a folder of links to --predict-images shared photos (from
Training_Set and then Test_Set; nothing is copied), with an untrained model of the same --arch,
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
    parser.add_argument("--arch", default=config.DEFAULT_ARCH, help="the model (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="(default: %(default)s)")
    parser.add_argument("--bound-gb", type=float, default=8.0, help="the memory each run should stay under (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="sampling (default: %(default)s)")
    parser.add_argument("--train-child", metavar="DATA", help=argparse.SUPPRESS)  # internal: be the training process
    return parser.parse_args()


def train_child(data_dir, arch, batch_size, steps, seed):
    """The training process: train()'s data and model set-up, then a few steps and one validation."""
    from classifier.data import check_layout, labelled_samples, split_off
    from classifier.distribute import make_strategy
    from classifier.model import make_model, set_phase
    from classifier.runs import Run
    from classifier.training import Photos, compile_for, data_for_fit, plan_phases, with_model_defaults

    settings = with_model_defaults(config.RunConfig(data=data_dir, arch=arch, batch_size=batch_size, seed=seed))
    class_names = check_layout(data_dir)
    samples, _ = labelled_samples(Path(data_dir, config.TRAIN_DIR), class_names, settings.image_size)
    train_samples, val_samples = split_off(samples, settings.val_split, seed)
    settings = with_model_defaults(settings, len(train_samples))
    model = make_model(arch, settings.image_size, len(class_names))
    run = Run(settings, class_names, batch_size, make_strategy("none"), output=None)  # writes no files
    fit = data_for_fit(run, model, Photos(train_samples, val_samples, [], 0, 0))
    phase = plan_phases(settings)[0]
    set_phase(model, phase.kind)
    compile_for(fit.model, phase, math.ceil(len(train_samples) / batch_size))
    fit.model.fit(fit.train, validation_data=fit.validation, steps_per_epoch=steps, epochs=1, verbose=0)


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
        return train_child(args.train_child, args.arch, args.batch_size, args.steps, args.seed)
    common.require_shared_dataset()
    print(f"Peak memory against a bound of {args.bound_gb:g} GB; {common.machine_line()}")
    common.quiet_tensorflow()
    from classifier.model import MODELS

    size = MODELS[args.arch].image_size
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        data = common.SHARED_DATASET
        if args.train_images:
            data = common.linked_dataset(Path(workdir, "data"), args.train_images, max(2, args.train_images // 4), args.seed)
        photos = len(common.find_images([data / config.TRAIN_DIR])[0])
        model_path = common.save_untrained_model(workdir, args.arch)
        folder = predict_folder(workdir, args.predict_images)
        runs = {
            'python -c "import tensorflow" (floor)': [sys.executable, "-c", "import tensorflow"],
            f"training {args.arch}: {photos} photos, {size} px, {args.steps} steps":
                [sys.executable, __file__, "--train-child", str(data), "--arch", args.arch,
                 "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--seed", str(args.seed)],
            f"predict.py: {args.predict_images} photos":
                [sys.executable, str(common.PROJECT / "predict.py"), "--model", str(model_path), str(folder)],
        }
        # The bare import's C++ start-up lines would clutter the report; the other runs' warnings should show.
        results = {label: measured(label, command, show_errors=index > 0) for index, (label, command) in enumerate(runs.items())}

    bound_mb = args.bound_gb * 1024
    floor = next(iter(results.values()))[1]
    print(f"\n{'run':<62}{'wall s':>8}{'peak MB':>9}{'vs floor':>10}{'of bound':>10}")
    for label, (seconds, peak) in results.items():
        verdict = "" if peak <= bound_mb else "  OVER THE BOUND"
        print(f"{label:<62}{seconds:>8.0f}{peak:>9.0f}{peak / floor:>9.1f}x{peak / bound_mb:>10.0%}{verdict}")
    print(f"(the training cache alone holds {photos} x {size}x{size}x3 bytes = {photos * size ** 2 * 3 / 2**20:.0f} MB)")
    return 1 if any(peak > bound_mb for _, peak in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
