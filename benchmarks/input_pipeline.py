"""Input pipeline speed: images per second of our tf.data pipeline against the classic
ImageDataGenerator, on the same photos at each model's image size.

    python benchmarks/input_pipeline.py                   # 2,000 photos; cnn (96 px) and efficientnet-lite0 (288 px); about 2-3 min
    python benchmarks/input_pipeline.py --images 200 --models cnn

Ours is train()'s: the Pillow check of every photo (data.labelled_samples), then
data.image_dataset(cache=True) decoding and resizing in parallel and keeping uint8 pixels. Timed:
- check + first pass: the check and one pass that decodes, resizes and fills the cache (epoch 1);
- cached pass: another pass, served from the cache (every later epoch; the median of 3 passes);
- cached pass + augmentation: with the model's own augmentation layers (flips for the pretrained
  model; flips, rotations and zooms for the cnn) applied to each batch, as model.fit runs them --
  the fair match for the classic generator, which augments too.

The anchor, measured in the same run on the same files, is the classic Keras 2 recipe:
ImageDataGenerator(rescale=1/255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
.flow_from_directory(...). Keras 3 keeps it only in keras.src.legacy; its shear and zoom call
scipy.ndimage, so scipy is a benchmark-only dependency (benchmarks/README.md). Without scipy the
classic side runs with rescale and flip only, and says so. The generator has no cache: every epoch
costs what its one pass costs.

Every photo is read once beforehand, so neither side pays for the disk, and each side reads one
batch before it is timed, so one-time start-up costs are left out.
"""
import argparse
import statistics
import tempfile

import common
from classifier import config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="photos sampled from the shared Training_Set (default: %(default)s)")
    parser.add_argument("--models", default=f"cnn,{config.DEFAULT_ARCH}", help="whose image size and augmentation (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="images per batch (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="which photos are sampled (default: %(default)s)")
    return parser.parse_args()


def one_pass(dataset):
    for _ in dataset:
        pass


def augmentation_layers(arch, image_size):
    """The model's own Random* layers, run in training mode on each batch as fit runs them."""
    import keras
    from classifier.model import make_model

    layers = [layer for layer in make_model(arch, image_size, 2).layers if type(layer).__name__.startswith("Random")]
    return keras.Sequential(layers), ", ".join(type(layer).__name__ for layer in layers)


def time_ours(folder, arch, image_size, batch_size, seed):
    """Seconds for (check + first pass, cached pass, cached pass with augmentation layers)."""
    from classifier.data import class_folders, image_dataset, labelled_samples

    def build():
        samples, _ = labelled_samples(folder, class_folders(folder), image_size)
        return image_dataset(samples, image_size, batch_size, shuffle=True, seed=seed, cache=True)

    # One batch through a separate pipeline first: TensorFlow's one-time set-up is not the pipeline's cost.
    warm_up, _ = labelled_samples(folder, class_folders(folder)[:1], image_size)
    one_pass(image_dataset(warm_up[:batch_size], image_size, batch_size))

    dataset, check = common.timed(build)
    _, first = common.timed(one_pass, dataset)
    cached = statistics.median(common.timed(one_pass, dataset)[1] for _ in range(3))
    augment, names = augmentation_layers(arch, image_size)
    augmented = dataset.map(lambda images, labels: (augment(images, training=True), labels))
    one_pass(augmented.take(1))
    _, cached_augmented = common.timed(one_pass, augmented)
    return check + first, cached, cached_augmented, names


def classic_generator():
    """The classic tutorial's generator; (generator, description of its transforms)."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    try:
        import scipy  # noqa: F401  (shear and zoom need scipy.ndimage)
        return (ImageDataGenerator(rescale=1 / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True),
                "rescale, shear 0.2, zoom 0.2, horizontal flip")
    except ImportError:
        return (ImageDataGenerator(rescale=1 / 255, horizontal_flip=True),
                "rescale and horizontal flip only: scipy is missing, so no shear or zoom (pip install scipy)")


def time_classic(folder, image_size, batch_size, seed):
    """Seconds for one pass of flow_from_directory over the folder."""
    generator, _ = classic_generator()
    flow = generator.flow_from_directory(str(folder), target_size=(image_size, image_size), batch_size=batch_size,
                                         class_mode="binary", shuffle=True, seed=seed)

    def one_pass():
        for index in range(len(flow)):
            flow[index]

    flow[0]  # warm-up: imports and first-call costs
    return common.timed(one_pass)[1]


def main():
    args = parse_args()
    common.require_shared_dataset()
    print(f"Input pipeline: {args.images} photos, batch {args.batch_size}; {common.machine_line()}")
    common.quiet_tensorflow()
    from classifier.model import MODELS

    _, transforms = classic_generator()
    print(f"classic generator: {transforms}")
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as workdir:
        chosen = common.sample_photos(common.SHARED_DATASET / config.TRAIN_DIR, args.images, args.seed)
        folder = common.link_photos(chosen, workdir)
        common.warm_file_cache(folder)
        for arch in args.models.split(","):
            size = MODELS[arch].image_size
            classic = time_classic(folder, size, args.batch_size, args.seed)
            first, cached, augmented, names = time_ours(folder, arch, size, args.batch_size, args.seed)
            rate = lambda seconds: args.images / seconds  # noqa: E731
            print(f"\n{f'{arch}, {size} px':<30}{'images/s':>9}   ours/classic")
            print(f"  classic ImageDataGenerator  {rate(classic):9.0f}   (anchor, every epoch)")
            print(f"  ours, check + first pass    {rate(first):9.0f}   {classic / first:5.2f}x  (epoch 1)")
            print(f"  ours, cached pass           {rate(cached):9.0f}   {classic / cached:5.2f}x  (later epochs, no augmentation)")
            print(f"  ours, cached + augmentation {rate(augmented):9.0f}   {classic / augmented:5.2f}x  (later epochs, as fit runs them: {names})")


if __name__ == "__main__":
    main()
