"""Training speed: images per second and minutes per epoch of the default model against an epoch
of our from-scratch cnn, measured in the same run on the same photos.

    python benchmarks/training_speed.py                      # 30 timed steps per variant (about 4-6 min)
    python benchmarks/training_speed.py --images 128 --steps 3 --warmup-steps 1   # a quick check

The default model trains as train() trains it (features.py): its frozen blocks run once over every
training photo and its mirror image, then each epoch of both phases (the head, then fine-tuning
the top blocks) trains only the model's top on their output. So its rows are that one-time pass
(minutes per run, not per epoch) and an epoch of each phase.

The photos are decoded and cached first (classifier.data.image_dataset with cache=True, as
train() does), so only the training steps are timed: a callback notes the time at the end of each
batch, and the figure is the images of the steps after --warmup-steps (tracing) divided by their
time. Each model is compiled and its phase set as train() does it (model.set_phase,
training.compile_for). Minutes apply that rate to the images train() fits on the whole shared
Training_Set (90 %: the rest is held out for validation); every epoch also validates.
"""
import argparse
import tempfile
import time

import common
from classifier import config

VARIANTS = [  # (label, model, phase); the first is the anchor
    ("cnn, from scratch (anchor), per epoch", "cnn", "train"),
    (f"{config.DEFAULT_ARCH}, frozen blocks, once a run", config.DEFAULT_ARCH, "frozen"),
    (f"{config.DEFAULT_ARCH}, phase 'head', per epoch", config.DEFAULT_ARCH, "head"),
    (f"{config.DEFAULT_ARCH}, phase 'fine-tune', per epoch", config.DEFAULT_ARCH, "fine-tune"),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512, help="photos sampled from the shared Training_Set and cached (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per variant (default: %(default)s)")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first: tracing (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="sampling, shuffling and weights (default: %(default)s)")
    return parser.parse_args()


def cached_dataset(samples, image_size, batch_size, seed):
    """train()'s training pipeline, read once so its cache is full before timing; full batches only
    (a last, smaller batch would be traced again inside the timing)."""
    from classifier.data import image_dataset

    dataset = image_dataset(samples, image_size, batch_size, shuffle=True, seed=seed, cache=True)
    for _ in dataset:
        pass
    return dataset.rebatch(batch_size, drop_remainder=True)


def images_per_second(model, dataset, batch_size, warmup_steps, steps):
    """Train for warm-up + timed steps; the rate over the timed steps, from when each batch ended."""
    import keras

    ends = []
    clock = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    model.fit(dataset.repeat(), steps_per_epoch=warmup_steps + steps, epochs=1, callbacks=[clock], verbose=0)
    start = max(warmup_steps, 1) - 1  # the clock starts at the end of the last warm-up step
    return (len(ends) - 1 - start) * batch_size / (ends[-1] - ends[start])


def frozen_pass(frozen, samples, size, batch_size):
    """Images/s of the one-time pass: each photo and its mirror image through the frozen blocks
    (after one untimed batch, for tracing). Returns (rate, the features)."""
    from classifier.features import frozen_features

    frozen_features(frozen, samples[:batch_size], size, batch_size, mirrors=True, verbose=0)
    started = time.perf_counter()
    features = frozen_features(frozen, samples, size, batch_size, mirrors=True, verbose=0)
    return 2 * len(samples) / (time.perf_counter() - started), features


def measure(arch, phase, folder, args, models):
    """Images/s of one variant; the model is kept in `models`, so fine-tuning follows its head phase."""
    import keras
    from classifier.data import class_folders, labelled_samples
    from classifier.features import feature_dataset
    from classifier.model import MODELS, make_model, set_phase, split_frozen
    from classifier.model import Phase
    from classifier.training import PlannedPhase, compile_for

    size = MODELS[arch].image_size
    samples, _ = labelled_samples(folder, class_folders(folder), size)
    if arch not in models:
        keras.utils.set_random_seed(args.seed)
        model = make_model(arch, size, 2)
        models[arch] = (model, *split_frozen(model)) if MODELS[arch].pretrained else (model, None, model)
    model, frozen, fitted = models[arch]
    if phase == "frozen":
        rate, models[arch, "features"] = frozen_pass(frozen, samples, size, args.batch_size)
        return size, rate
    if frozen is None:
        dataset = cached_dataset(samples, size, args.batch_size, args.seed)
    else:  # the top, on the frozen blocks' output
        dataset = feature_dataset(models[arch, "features"], samples, args.batch_size, shuffle=True, seed=args.seed, mirrored=True)
        dataset = dataset.rebatch(args.batch_size, drop_remainder=True)
    set_phase(model, phase)
    compile_for(fitted, PlannedPhase(Phase(phase), 0, 1, MODELS[arch].learning_rate, warmup=False), len(samples) // args.batch_size)
    return size, images_per_second(fitted, dataset, args.batch_size, args.warmup_steps, args.steps)


def main():
    args = parse_args()
    common.require_shared_dataset()
    total = len(common.find_images([common.SHARED_DATASET / config.TRAIN_DIR])[0])
    epoch_images = total - round(total * config.VAL_SPLIT)
    print(f"Training speed: {args.steps} timed steps after {args.warmup_steps} warm-up steps, batch {args.batch_size}, "
          f"cached data from {args.images} photos; {common.machine_line()}", flush=True)
    common.quiet_tensorflow()

    models = {}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as workdir:
        folder = common.link_photos(common.sample_photos(common.SHARED_DATASET / config.TRAIN_DIR, args.images, args.seed), workdir)
        print(f"\n{'variant':<50}{'px':>5}{'images/s':>10}{'min':>7}{'vs anchor':>11}")
        anchor = None
        for label, arch, phase in VARIANTS:
            size, rate = measure(arch, phase, folder, args, models)
            anchor = anchor or rate
            images = 2 * epoch_images if phase == "frozen" else epoch_images  # each photo and its mirror image
            print(f"{label:<50}{size:>5}{rate:>10.1f}{images / rate / 60:>7.1f}{rate / anchor:>10.2f}x", flush=True)
    print(f"min: {epoch_images} training images at that rate (data cached; the first epoch also decodes, "
          "every epoch also validates 10 %); the frozen pass takes each photo and its mirror image, once a run")


if __name__ == "__main__":
    main()
