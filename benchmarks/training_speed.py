"""Training speed: images per second and minutes per epoch of the default model's two phases
(the head on the frozen ImageNet backbone, then fine-tuning the top blocks) against an epoch of
our from-scratch cnn, measured in the same run on the same photos.

    python benchmarks/training_speed.py                      # 30 timed steps per phase (about 4-6 min)
    python benchmarks/training_speed.py --images 128 --steps 3 --warmup-steps 1   # a quick check

The photos are decoded and cached first (classifier.data.image_dataset with cache=True, as
train() does), so only the training steps are timed: a callback notes the time at the end of each
batch, and the figure is the images of the steps after --warmup-steps (tracing) divided by their
time. Each model is compiled and its phase set as train() does it (model.set_phase,
training.compile_for). Minutes per epoch apply that rate to the images train() fits on the whole
shared Training_Set (90 %: the rest is held out for validation); the first epoch also decodes,
and every epoch also validates.
"""
import argparse
import tempfile
import time

import common
from classifier import config

VARIANTS = [  # (label, model, phase); the first is the anchor
    ("cnn, from scratch (anchor)", "cnn", "train"),
    (f"{config.DEFAULT_ARCH}, phase 'head'", config.DEFAULT_ARCH, "head"),
    (f"{config.DEFAULT_ARCH}, phase 'fine-tune'", config.DEFAULT_ARCH, "fine-tune"),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512, help="photos sampled from the shared Training_Set and cached (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per variant (default: %(default)s)")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first: tracing (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="sampling, shuffling and weights (default: %(default)s)")
    return parser.parse_args()


def cached_dataset(folder, image_size, batch_size, seed):
    """train()'s training pipeline, read once so its cache is full before timing; full batches only
    (a last, smaller batch would be traced again inside the timing)."""
    from classifier.data import class_folders, image_dataset, labelled_samples

    samples, _ = labelled_samples(folder, class_folders(folder), image_size)
    dataset = image_dataset(samples, image_size, batch_size, shuffle=True, seed=seed, cache=True)
    for _ in dataset:
        pass
    return dataset.rebatch(batch_size, drop_remainder=True), len(samples)


def images_per_second(model, dataset, batch_size, warmup_steps, steps):
    """Train for warm-up + timed steps; the rate over the timed steps, from when each batch ended."""
    import keras

    ends = []
    clock = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    model.fit(dataset.repeat(), steps_per_epoch=warmup_steps + steps, epochs=1, callbacks=[clock], verbose=0)
    start = max(warmup_steps, 1) - 1  # the clock starts at the end of the last warm-up step
    return (len(ends) - 1 - start) * batch_size / (ends[-1] - ends[start])


def measure(arch, phase, folder, args, models):
    """Images/s of one phase; the model is kept in `models`, so fine-tuning follows its head phase."""
    import keras
    from classifier.model import MODELS, make_model, set_phase
    from classifier.training import Phase, compile_for

    size = MODELS[arch].image_size
    dataset, count = cached_dataset(folder, size, args.batch_size, args.seed)
    if arch not in models:
        keras.utils.set_random_seed(args.seed)
        models[arch] = make_model(arch, size, 2)
    model = models[arch]
    set_phase(model, phase)
    compile_for(model, Phase(phase, 0, 1, MODELS[arch].learning_rate, warmup=False), count // args.batch_size)
    return size, images_per_second(model, dataset, args.batch_size, args.warmup_steps, args.steps)


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
        print(f"\n{'variant':<42}{'px':>5}{'images/s':>10}{'min/epoch':>11}{'vs anchor':>11}")
        anchor = None
        for label, arch, phase in VARIANTS:
            size, rate = measure(arch, phase, folder, args, models)
            anchor = anchor or rate
            print(f"{label:<42}{size:>5}{rate:>10.1f}{epoch_images / rate / 60:>11.1f}{rate / anchor:>10.2f}x", flush=True)
    print(f"min/epoch: {epoch_images} training images at that rate (data cached; the first epoch also decodes, "
          "every epoch also validates 10 %)")


if __name__ == "__main__":
    main()
