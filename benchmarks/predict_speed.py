"""Prediction speed on full-size photos, in one run, on the same photos and model, with both engines:

  (a) predict.py's path with LiteRT (a fresh model.tflite, compiled.py): predict_files on the paths,
      each photo decoded once on a thread pool while the interpreter labels the previous chunk;
  (a') the same with Keras (predict.py --no-compiled): the Pillow check, then tf.data and the model;
  (b) LiteRT alone on the same photos already decoded to tensors of the model's input size;
  (b') Keras's model.predict alone on them;
  (c) the classic loop: keras.utils.load_img + img_to_array + model.predict on one photo at a time.

Goals: a/b >= 0.85 (reading photos costs little next to the model) and a/c >= 10. Then where the
time of (a) goes: reading the photos (compiled.read_for_model on a thread pool) and the model.

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


def decoded(paths, image_size):
    """Reading alone, as the LiteRT path reads (compiled.read_for_model on a thread pool): uint8 (N, size, size, 3)."""
    import numpy as np
    from classifier.compiled import read_for_model
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        return np.stack(list(pool.map(lambda path: read_for_model(path, image_size), paths)))


def litert_alone(compiled, tensors, batch_size):
    """(b): the interpreter on decoded tensors, batch by batch."""
    for start in range(0, len(tensors), batch_size):
        compiled(tensors[start:start + batch_size].astype("float32"))
    return len(tensors)


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
    from classifier import artifacts
    from classifier.compiled import CompiledModel, compile_model
    from classifier.prediction import load_classifier

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as workdir:
        folder = Path(args.photos or Path(workdir, "photos"))
        paths, seconds = common.timed(make_photos, folder, args.images, size, args.seed)
        print(f"photos: {folder}, {sum(path.stat().st_size for path in paths) / 2**20:.0f} MB ({seconds:.0f} s to make or find)")
        common.warm_file_cache(folder)
        model_path = common.model_file(args.model, workdir)
        model, info = load_classifier(model_path, compiled=False)
        # The compiled form as train_CNN.py writes it, into the scratch folder (the model's own is left alone).
        compiled = CompiledModel(compile_model(model, info, model_path, artifacts.weights_beside(model_path),
                                               target=Path(workdir, "model.tflite")), info)
        size_px = info.image_size
        # Warm-up: tracing of the reader and the model, and the first call of each way.
        for engine in (compiled, model):
            predict_path(engine, info, paths[:args.batch_size], args.batch_size)
        classic_loop(model, paths[:1], size_px)

        labelled, ours = common.timed(predict_path, compiled, info, paths, args.batch_size)
        labelled_keras, ours_keras = common.timed(predict_path, model, info, paths, args.batch_size)
        tensors, decode = common.timed(decoded, paths, size_px)
        _, bare = common.timed(litert_alone, compiled, tensors, args.batch_size)
        model.predict(tensors[:args.batch_size].astype("float32"), verbose=0)  # warm-up: predict() traces once per batch shape
        _, bare_keras = common.timed(model.predict, tensors.astype("float32"), batch_size=args.batch_size, verbose=0)
        classic_paths = paths[:args.classic_images]
        _, classic = common.timed(classic_loop, model, classic_paths, size_px)

    rate = {"a": labelled / ours, "a'": labelled_keras / ours_keras, "b": len(tensors) / bare,
            "b'": len(tensors) / bare_keras, "c": len(classic_paths) / classic}
    rows = {"a": "(a) predict.py, LiteRT: predict_files on the paths",
            "a'": "(a') predict.py --no-compiled, Keras: predict_files on the paths",
            "b": f"(b) LiteRT alone on decoded {size_px}x{size_px} tensors",
            "b'": "(b') Keras model.predict alone on them",
            "c": f"(c) load_img + model.predict, one photo at a time ({len(classic_paths)} photos)"}
    print(f"\n{'':<68}{'images/s':>10}{'ms/photo':>10}")
    for key, label in rows.items():
        print(f"{label:<68}{rate[key]:>10.1f}{1000 / rate[key]:>10.1f}")
    keras_path, keras_alone = rate["a'"], rate["b'"]
    print(f"a/b = {rate['a'] / rate['b']:.2f} (goal >= 0.85); a/c = {rate['a'] / rate['c']:.1f} (goal >= 10); "
          f"with Keras: a'/b' = {keras_path / keras_alone:.2f}, a'/c = {keras_path / rate['c']:.1f}")
    print(f"\nwhere (a)'s time goes, each step alone over all {len(paths)} photos, ms per photo:")
    print(f"  reading (Pillow decode at 1/8 + area resize, thread pool)  {1000 * decode / len(paths):6.1f}")
    print(f"  LiteRT                                                     {1000 * bare / len(tensors):6.1f}")
    print(f"  sum {1000 * (decode + bare) / len(paths):.1f}; predict_files took {1000 * ours / len(paths):.1f}")


if __name__ == "__main__":
    main()
