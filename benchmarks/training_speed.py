"""Training speed: images per second and time per epoch of the default training set-up, on
cached data, against the classic two-block CNN at 64 px measured in the same run.

    python benchmarks/training_speed.py                     # 40 timed steps per variant (about 3-5 min)
    python benchmarks/training_speed.py --images 256 --steps 5 --warmup-steps 2   # a quick check

The photos are decoded and cached first (classifier.data.image_dataset, as train_CNN.py does), so
only the training steps are timed: a callback notes the time at the end of each batch, and the
figure is the images of the steps after --warmup-steps (which include tracing and, with XLA,
compiling) divided by their time. Time per epoch is that rate applied to --epoch-images (the
shared Training_Set by default).

Variants, all compiled as train_CNN.py compiles them (AdamW, warm-up + cosine schedule):
- classic 64 px: make_model("classic", 64), batch 64 -- the anchor;
- cnn default: make_model("cnn", config.IMAGE_SIZE) with config.BATCH_SIZE, augmentation layers
  inside the model, as train_CNN.py trains it. Keras cannot XLA-compile it (RandomZoom does not
  support jit_compile; Keras warns "Model doesn't support jit_compile=True" and runs without);
- cnn, augmentation in tf.data: the same network without its augmentation layers, which run
  instead in the input pipeline (dataset.map), so XLA becomes possible; timed without XLA...
- ...and with jit_compile=True, so the effect of moving augmentation and of XLA show apart.
"""
import argparse
import math
import tempfile
import time

import common
from classifier import config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="photos sampled from the shared Training_Set and cached (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per variant (default: %(default)s)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first: tracing and XLA compiling (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=config.IMAGE_SIZE, help="image size of the cnn variants (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="batch size of the cnn variants (default: %(default)s)")
    parser.add_argument("--epoch-images", type=int, default=None,
                        help="training-set size for the time per epoch (default: the shared Training_Set's count)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="sampling, shuffling and weights (default: %(default)s)")
    return parser.parse_args()


def cached_dataset(folder, image_size, batch_size, seed):
    """The training pipeline of train_CNN.py, read once so its cache is full before timing."""
    from classifier.data import class_folders, image_dataset

    dataset, count, _ = image_dataset(folder, class_folders(folder), image_size, batch_size, shuffle=True, seed=seed)
    for _ in dataset:
        pass
    return dataset, count


def split_augmentation(model):
    """(augmentation layers, the model rebuilt without them) -- the same layer objects, re-wired."""
    import keras

    augmentation = [layer for layer in model.layers if type(layer).__name__.startswith("Random")]
    rest = [layer for layer in model.layers if layer not in augmentation]
    bare = keras.Sequential([keras.Input(shape=model.input_shape[1:]), *rest], name=f"{model.name}_no_augmentation")
    return keras.Sequential(augmentation, name="augmentation"), bare


def images_per_second(model, dataset, batch_size, warmup_steps, steps):
    """Train for warm-up + timed steps; the rate over the timed steps, from when each batch ended."""
    import keras

    ends = []
    clock = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    model.fit(dataset.repeat(), steps_per_epoch=warmup_steps + steps, epochs=1, callbacks=[clock], shuffle=False, verbose=0)
    # The clock starts at the end of the last warm-up step (or of the first step, without warm-up).
    start = max(warmup_steps, 1) - 1
    return (len(ends) - 1 - start) * batch_size / (ends[-1] - ends[start])


def measure(kind, image_size, batch_size, folder, args, augmentation_in_pipeline=False, jit=False):
    import keras
    import tensorflow as tf
    from classifier.model import make_model
    from classifier.training import compile_model

    keras.backend.clear_session()
    keras.utils.set_random_seed(args.seed)
    dataset, count = cached_dataset(folder, image_size, batch_size, args.seed)
    # Full batches only: a last, smaller batch would make XLA compile a second shape inside the timing.
    dataset = dataset.rebatch(batch_size, drop_remainder=True)
    model = make_model(kind, image_size)
    if augmentation_in_pipeline:
        augment, model = split_augmentation(model)
        dataset = dataset.map(lambda images, labels: (augment(images, training=True), labels),
                              num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    compile_model(model, math.ceil(count / batch_size), config.EPOCHS, config.LEARNING_RATE)
    if jit:
        model.jit_compile = True  # the setter warns and keeps False if a layer cannot be compiled
    rate = images_per_second(model, dataset, batch_size, args.warmup_steps, args.steps)
    return rate, model.jit_compile


def jit_refusal(image_size):
    """What Keras says when asked to XLA-compile the default model, augmentation layers included."""
    import warnings
    from classifier.model import make_model
    from classifier.training import compile_model

    model = make_model("cnn", image_size)
    compile_model(model, 1, 1, config.LEARNING_RATE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.jit_compile = True
    said = "; ".join(str(warning.message) for warning in caught) or "no warning"
    return f"jit_compile=True on the default model -> jit_compile={model.jit_compile} ({said})"


def main():
    args = parse_args()
    common.require_shared_dataset()
    epoch_images = args.epoch_images or len(common.find_images([common.SHARED_DATASET / config.TRAIN_DIR])[0])
    print(f"Training speed: {args.steps} timed steps after {args.warmup_steps} warm-up steps, "
          f"cached data from {args.images} photos; {common.machine_line()}")
    common.quiet_tensorflow()

    size, batch = args.image_size, args.batch_size
    variants = [  # (label, kind, image size, batch size, augmentation in tf.data, jit_compile)
        ("classic 64 px, batch 64 (anchor)", "classic", 64, 64, False, False),
        (f"cnn {size} px, batch {batch}, augmentation in model", "cnn", size, batch, False, False),
        (f"cnn {size} px, batch {batch}, augmentation in tf.data", "cnn", size, batch, True, False),
        (f"cnn {size} px, batch {batch}, augmentation in tf.data, XLA", "cnn", size, batch, True, True),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-training-") as workdir:
        chosen = common.sample_photos(common.SHARED_DATASET / config.TRAIN_DIR, args.images, args.seed)
        folder = common.link_photos(chosen, workdir)
        print(f"\n{'variant':<58}{'jit':>6}{'images/s':>10}{'min/epoch':>11}{'vs anchor':>11}")
        anchor = None
        for label, kind, image_size, batch_size, in_pipeline, jit in variants:
            rate, jit_used = measure(kind, image_size, batch_size, folder, args, in_pipeline, jit)
            anchor = anchor or rate
            print(f"{label:<58}{str(jit_used):>6}{rate:>10.0f}{epoch_images / rate / 60:>11.1f}{rate / anchor:>10.2f}x", flush=True)
    print(f"\n{jit_refusal(size)}")
    print(f"min/epoch: {epoch_images} training images at that rate (data already cached; epoch 1 also decodes).")


if __name__ == "__main__":
    main()
