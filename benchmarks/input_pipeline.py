"""Input pipeline speed: images per second of our tf.data pipeline against the classic
ImageDataGenerator, on the same folder of photos at the same image sizes.

    python benchmarks/input_pipeline.py                  # 2,000 photos, 64 and 128 px (about 1-2 min)
    python benchmarks/input_pipeline.py --images 200 --sizes 64

Ours is classifier.data.image_dataset, as train_CNN.py builds it: a Pillow pre-scan of every file,
then keras.utils.image_dataset_from_directory decoding and resizing in parallel, cached as uint8.
It is timed three ways:
- first pass: the pre-scan plus one pass that decodes, resizes and fills the cache (epoch 1);
- cached pass: another pass, served from the cache (every later epoch; the median of 3 passes);
- cached pass + augmentation: the cached pass with the model's augmentation layers applied to each
  batch, as model.fit runs them -- the fair match for the classic generator, which augments too.

The anchor, measured in the same run on the same files, is the classic Keras 2 recipe:
ImageDataGenerator(rescale=1/255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
.flow_from_directory(...). Keras 3 keeps it only in keras.src.legacy; its shear and zoom call
scipy.ndimage, so scipy is a benchmark-only dependency (benchmarks/README.md). Without scipy the
classic side runs with rescale and flip only, and says so. The generator has no cache: every epoch
costs what its one pass costs.

Every photo is read once beforehand, so neither side pays for the disk, and each side reads one
batch before it is timed, so TensorFlow's and scipy's one-time start-up costs are left out.
"""
import argparse
import tempfile

import common
from classifier import config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="photos sampled from the shared Training_Set (default: %(default)s)")
    parser.add_argument("--sizes", default="64,128", help="comma-separated image sizes in pixels (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="images per batch (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="which photos are sampled (default: %(default)s)")
    return parser.parse_args()


def time_ours(folder, image_size, batch_size, seed):
    """Seconds for (pre-scan + first pass, cached pass, cached pass with augmentation layers)."""
    from classifier.data import class_folders, image_dataset
    from classifier.model import preprocessing
    import keras

    def one_pass(dataset):
        for _ in dataset:
            pass

    def build():
        dataset, _, _ = image_dataset(folder, class_folders(folder), image_size, batch_size, shuffle=True, seed=seed)
        return dataset

    # One batch through a separate pipeline first: TensorFlow's one-time set-up is not the pipeline's cost.
    warm_up = keras.utils.image_dataset_from_directory(folder, image_size=(image_size, image_size), batch_size=batch_size, verbose=False)
    one_pass(warm_up.take(1))

    dataset, build_seconds = common.timed(build)  # the pre-scan happens here
    _, first = common.timed(one_pass, dataset)
    cached = common.median([common.timed(one_pass, dataset)[1] for _ in range(3)])
    # The augmentation layers of make_model (everything between Input and Rescaling), run in
    # training mode on each batch, as the first layers of the model do during fit.
    augment = keras.Sequential([layer for layer in preprocessing(image_size)[1:] if "Random" in type(layer).__name__])
    augmented = dataset.map(lambda images, labels: (augment(images, training=True), labels))
    one_pass(augmented.take(1))
    _, cached_augmented = common.timed(one_pass, augmented)
    return build_seconds + first, cached, cached_augmented


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
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"Input pipeline: {args.images} photos, batch {args.batch_size}; {common.machine_line()}")
    common.quiet_tensorflow()
    _, transforms = classic_generator()
    print(f"classic generator: {transforms}")

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as workdir:
        chosen = common.sample_photos(common.SHARED_DATASET / config.TRAIN_DIR, args.images, args.seed)
        folder = common.link_photos(chosen, workdir)
        common.warm_file_cache(folder)
        for size in sizes:
            classic = time_classic(folder, size, args.batch_size, args.seed)
            first, cached, augmented = time_ours(folder, size, args.batch_size, args.seed)
            rate = lambda seconds: args.images / seconds  # noqa: E731
            print(f"\n{size} px                          images/s   ours/classic")
            print(f"  classic ImageDataGenerator  {rate(classic):9.0f}   (anchor, every epoch)")
            print(f"  ours, pre-scan + first pass {rate(first):9.0f}   {classic / first:5.2f}x  (epoch 1)")
            print(f"  ours, cached pass           {rate(cached):9.0f}   {classic / cached:5.2f}x  (later epochs, no augmentation)")
            print(f"  ours, cached + augmentation {rate(augmented):9.0f}   {classic / augmented:5.2f}x  (later epochs, as fit runs them)")


if __name__ == "__main__":
    main()
