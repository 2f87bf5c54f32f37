"""Prediction speed on phone-sized photos: images per second and peak memory of predict.py's
batched reader against the classic one-photo-at-a-time loop, measured in the same run.

    python benchmarks/predict_speed.py                 # 200 photos of 12 megapixels (about 2-4 min)
    python benchmarks/predict_speed.py --images 20     # a quick check
    python benchmarks/predict_speed.py --model model.h5 --weights weights.h5

The photos: shared cats-and-dogs photos resized up to 3024x4032 and 4000x3000 with a little
Pillow noise blended in (so they compress like camera photos, about 2.5 MB each), saved as
quality-90 JPEGs in a temporary folder. Without --model, the model is the default
make_model("cnn", config.IMAGE_SIZE) with fresh weights, saved as train_CNN.py saves it (speed
does not depend on the weight values).

- ours: classifier.prediction.predict_files, as predict.py runs it: Pillow reads on a thread pool
  (shrinking JPEGs while decoding) overlapping model.predict_on_batch on --batch-size photos;
- classic (the anchor): the Keras 2 tutorial's loop, keras.utils.load_img(path, target_size)
  + img_to_array + expand_dims + model.predict on one photo at a time.

Each side runs in its own Python process, so its peak resident memory (ru_maxrss) is its own;
the time is the loop over the photos, after TensorFlow is imported and the model is loaded.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common
from classifier import config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="photos to make and label (default: %(default)s)")
    parser.add_argument("--sizes", default="3024x4032,4000x3000", help="photo sizes WxH, used in turn (default: %(default)s)")
    parser.add_argument("--model", metavar="FILE", help="a model.h5 from train_CNN.py (default: an untrained default cnn)")
    parser.add_argument("--weights", metavar="FILE", help="its weights.h5 (default: the one beside --model)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="photos per batch for ours (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="which shared photos are used (default: %(default)s)")
    # Internal: the script runs itself once per side, in a fresh process.
    parser.add_argument("--side", choices=("ours", "classic"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    return parser.parse_args()


def make_photos(folder, count, sizes, seed):
    """Write `count` phone-sized JPEGs made from shared photos; return their total size in MB."""
    from PIL import Image

    chosen = common.sample_photos(common.SHARED_DATASET / config.TRAIN_DIR, count, seed)
    sources = [path for paths in chosen.values() for path in paths]
    grain = {size: Image.effect_noise(size, 40).convert("RGB") for size in sizes}

    def make(index):
        size = sizes[index % len(sizes)]
        photo = Image.open(sources[index]).convert("RGB").resize(size, Image.Resampling.BICUBIC)
        target = Path(folder, f"photo_{index:05d}.jpg")
        Image.blend(photo, grain[size], 0.1).save(target, quality=90)
        return target.stat().st_size

    with ThreadPoolExecutor(os.cpu_count()) as pool:  # Pillow resizes and encodes outside the GIL
        return sum(pool.map(make, range(count))) / 2**20


def run_ours(model_path, weights_path, paths, batch_size):
    from classifier.images import BadImage
    from classifier.prediction import load_classifier, predict_files

    model, metadata = load_classifier(model_path, weights_path)
    started = time.perf_counter()
    results = list(predict_files(model, metadata["image_size"], paths, batch_size))
    seconds = time.perf_counter() - started
    return sum(not isinstance(result, BadImage) for _, result in results), seconds


def run_classic(model_path, weights_path, paths):
    import numpy as np
    common.quiet_tensorflow()
    import keras

    model = keras.models.load_model(model_path, compile=False)
    model.load_weights(weights_path)
    size = model.input_shape[1]
    started = time.perf_counter()
    for path in paths:
        image = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(size, size)))
        model.predict(np.expand_dims(image, axis=0), verbose=0)
    return len(paths), time.perf_counter() - started


def run_side(args):
    """In the child process: label every photo of --folder one way; print the figures as JSON."""
    paths = common.find_images([args.folder])[0]
    if args.side == "ours":
        count, seconds = run_ours(args.model, args.weights, paths, args.batch_size)
    else:
        count, seconds = run_classic(args.model, args.weights, paths)
    print(json.dumps({"images": count, "seconds": seconds}))


def measure_side(side, folder, model_path, weights_path, batch_size, workdir):
    """Run one side in a fresh process; return (images/s, peak resident MB)."""
    command = [sys.executable, __file__, "--side", side, "--folder", str(folder), "--model", str(model_path),
               "--weights", str(weights_path), "--batch-size", str(batch_size)]
    output = Path(workdir, f"{side}.json")
    with open(output, "w") as stdout:
        code, _, peak = common.run_measured(command, stdout=stdout)
    if code != 0:
        sys.exit(f"error: the {side} side failed with exit code {code} (its error is above)")
    figures = json.loads(output.read_text().strip().splitlines()[-1])
    return figures["images"] / figures["seconds"], peak


def main():
    args = parse_args()
    if args.side:
        return run_side(args)
    common.require_shared_dataset()
    sizes = [tuple(int(side) for side in size.split("x")) for size in args.sizes.split(",")]
    print(f"Prediction speed: {args.images} photos of {', '.join(args.sizes.split(','))} px; {common.machine_line()}")

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as workdir:
        photos = Path(workdir, "photos")
        photos.mkdir()
        megabytes, seconds = common.timed(make_photos, photos, args.images, sizes, args.seed)
        print(f"made {args.images} JPEGs, {megabytes:.0f} MB, in {seconds:.0f} s")
        if args.model:
            model_path = Path(args.model)
            weights_path = Path(args.weights) if args.weights else model_path.with_name(config.WEIGHTS_FILE)
        else:
            common.quiet_tensorflow()
            model_path, weights_path = common.save_untrained_model(workdir)
        common.warm_file_cache(photos)

        classic_rate, classic_peak = measure_side("classic", photos, model_path, weights_path, args.batch_size, workdir)
        ours_rate, ours_peak = measure_side("ours", photos, model_path, weights_path, args.batch_size, workdir)
    print(f"\n{'':<44}{'images/s':>10}{'peak RSS MB':>13}{'speed vs classic':>18}")
    print(f"{'classic loop, one photo at a time (anchor)':<44}{classic_rate:>10.1f}{classic_peak:>13.0f}{1:>17.2f}x")
    print(f"{f'ours, predict_files, batch {args.batch_size}':<44}{ours_rate:>10.1f}{ours_peak:>13.0f}{ours_rate / classic_rate:>17.2f}x")
    print(f"(this process, which made the photos and the model: peak RSS {common.peak_rss_mb():.0f} MB)")


if __name__ == "__main__":
    main()
