"""Prediction speed on full-size photos, three ways in one run, on the same photos and model:

  (a) predict.py's path: classifier.prediction.predict_files on the paths -- checking, reading,
      decoding and resizing each photo, and the model;
  (b) the model alone: model.predict on the same photos already decoded to tensors of its input size;
  (c) the classic loop: keras.utils.load_img + img_to_array + model.predict on one photo at a time.

Goals: a/b >= 0.8 (reading photos costs little next to the model) and a/c >= 10. Then where the
time of (a) goes: the Pillow check (images.check_images) and the decoding (data.image_dataset),
each timed alone over all the photos.

    python benchmarks/predict_speed.py                          # 1,000 photos of 4000x3000 (about 5-8 min)
    python benchmarks/predict_speed.py --model runs/shipped/model.h5
    python benchmarks/predict_speed.py --images 20 --classic-images 5   # a quick check
    python benchmarks/predict_speed.py --photos /tmp/photos     # keep the photos there; reused next time

The photos: shared Test_Set photos (seeded sample) resized up to --size with a little Pillow
noise blended in, so they compress like camera photos, saved as quality-90 JPEGs (random noise
photos if the shared set is absent). Every photo is read once beforehand, so no side pays for the disk.
"""
import argparse
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common
from classifier import config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000, help="photos labelled by (a) and (b) (default: %(default)s)")
    parser.add_argument("--classic-images", type=int, default=100, help="of them, labelled by the slow loop (c) (default: %(default)s)")
    parser.add_argument("--size", default="4000x3000", help="photo size WxH (default: %(default)s)")
    parser.add_argument("--model", metavar="FILE", help="a model.h5 from train_CNN.py (default: an untrained default model)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="as predict.py's --batch-size (default: %(default)s)")
    parser.add_argument("--photos", metavar="DIR", help="make the photos in DIR, or reuse those already there (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="which shared photos are used (default: %(default)s)")
    return parser.parse_args()


def make_photos(folder, count, size, seed):
    """`count` full-size JPEGs in folder (those already there are kept); returns their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    targets = [folder / f"photo_{index:05d}.jpg" for index in range(count)]
    if all(target.exists() for target in targets):
        return targets
    sources = []
    if common.SHARED_DATASET.is_dir():
        chosen = common.sample_photos(common.SHARED_DATASET / config.TEST_DIR, count, seed)
        sources = [path for paths in chosen.values() for path in paths]
    grain = Image.effect_noise(size, 40).convert("RGB")

    def make(index):
        photo = Image.open(sources[index]).convert("RGB").resize(size, Image.Resampling.BICUBIC) if sources else \
            Image.effect_noise(size, 80).convert("RGB")
        Image.blend(photo, grain, 0.1).save(targets[index], quality=90)

    with ThreadPoolExecutor(os.cpu_count()) as pool:  # Pillow resizes and encodes outside the GIL
        list(pool.map(make, (index for index, target in enumerate(targets) if not target.exists())))
    return targets


def predict_path(model, info, paths, batch_size):
    """(a): predict_files as predict.py runs it; the number of photos labelled."""
    from classifier.images import BadImage
    from classifier.prediction import predict_files
    return sum(not isinstance(result, BadImage) for result in predict_files(model, info, paths, batch_size))


def checked_samples(paths, image_size):
    """The Pillow check of every photo (images.check_images, as predict_files runs it) -> data.Sample list."""
    from classifier.data import Sample
    from classifier.images import check_images
    return [Sample.checked(path, 0, result) for path, result in check_images(paths, image_size, keep_pixels=True)]


def decoded(samples, image_size, batch_size):
    """Decoding and resizing alone (data.image_dataset, as predict_files reads): float32 (N, size, size, 3)."""
    import numpy as np
    from classifier.data import image_dataset
    return np.concatenate([images.numpy() for images, _ in image_dataset(samples, image_size, batch_size)])


def classic_loop(model, paths, image_size):
    """(c): the Keras 2 tutorial's way, one photo at a time."""
    import keras
    import numpy as np
    for path in paths:
        image = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(image_size, image_size)))
        model.predict(np.expand_dims(image, axis=0), verbose=0)
    return len(paths)


def main():
    args = parse_args()
    size = tuple(int(side) for side in args.size.split("x"))
    print(f"Prediction speed: {args.images} JPEGs of {args.size} px, batch {args.batch_size}; {common.machine_line()}", flush=True)
    common.quiet_tensorflow()
    from classifier.prediction import load_classifier

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as workdir:
        folder = Path(args.photos or Path(workdir, "photos"))
        paths, seconds = common.timed(make_photos, folder, args.images, size, args.seed)
        print(f"photos: {folder}, {sum(path.stat().st_size for path in paths) / 2**20:.0f} MB ({seconds:.0f} s to make or find)")
        common.warm_file_cache(folder)
        model, info = load_classifier(common.model_file(args.model, workdir))
        size_px = info.image_size
        # Warm-up: tracing of the reader and the model, and the first call of each way.
        predict_path(model, info, paths[:args.batch_size], args.batch_size)
        classic_loop(model, paths[:1], size_px)

        labelled, ours = common.timed(predict_path, model, info, paths, args.batch_size)
        samples, check = common.timed(checked_samples, paths, size_px)
        tensors, decode = common.timed(decoded, samples, size_px, args.batch_size)
        model.predict(tensors[:args.batch_size], verbose=0)  # warm-up: predict() traces once per batch shape
        _, bare = common.timed(model.predict, tensors, batch_size=args.batch_size, verbose=0)
        classic_paths = paths[:args.classic_images]
        _, classic = common.timed(classic_loop, model, classic_paths, size_px)

    rate = {"a": labelled / ours, "b": len(tensors) / bare, "c": len(classic_paths) / classic}
    print(f"\n{'':<62}{'images/s':>10}{'ms/photo':>10}")
    print(f"{'(a) predict_files on the paths (predict.py)':<62}{rate['a']:>10.1f}{1000 / rate['a']:>10.1f}")
    print(f"{f'(b) model.predict on decoded {size_px}x{size_px} tensors':<62}{rate['b']:>10.1f}{1000 / rate['b']:>10.1f}")
    print(f"{f'(c) load_img + model.predict, one photo at a time ({len(classic_paths)} photos)':<62}{rate['c']:>10.1f}{1000 / rate['c']:>10.1f}")
    print(f"a/b = {rate['a'] / rate['b']:.2f} (goal >= 0.8); a/c = {rate['a'] / rate['c']:.1f} (goal >= 10)")
    pillow = sum(sample.pillow is True for sample in samples)
    print(f"\nwhere (a)'s time goes, each step alone over all {len(paths)} photos, ms per photo:")
    print(f"  Pillow check (needs_pillow, thread pool)    {1000 * check / len(paths):6.1f}")
    print(f"  decode + resize (image_dataset, tf.data)    {1000 * decode / len(paths):6.1f}  ({pillow} of {len(samples)} photos by Pillow)")
    print(f"  model.predict                               {1000 * bare / len(tensors):6.1f}")
    print(f"  sum {1000 * (check + decode + bare) / len(paths):.1f}; predict_files took {1000 * ours / len(paths):.1f}")


if __name__ == "__main__":
    main()
