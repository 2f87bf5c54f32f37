"""train_CNN.py --check: is a dataset fit to train on? It checks and reports; it does not train.

    python train_CNN.py --check --data Dataset

Every photo of Training_Set/ and Test_Set/ is read once, on a thread pool as training's own check
is, for: whether it can be read (images.decode, the reader training uses), its size, a hash of
its bytes (exact copies) and a perceptual hash (imagehash.phash: the same picture resized,
recompressed or lightly edited). The report names:
- photos per class and set, and a strong class imbalance (PROBLEM: accuracy then says little);
- photos shared between Training_Set and Test_Set (PROBLEM: leakage, the test score counts photos
  the model has already learned as new ones);
- unreadable files (training skips them), copies within a set, tiny photos (notes).

Exit codes: 0 nothing serious (notes may be printed); 1 a PROBLEM was found; 2 the folder layout
is wrong (the error training gives); 130 stopped by Ctrl-C.

quick_check is the short form that starts every training run: imbalance, tiny photos and exact
copies shared by the sets, from what training's photo check found (size, hash); one line for each found.
"""
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .config import TEST_DIR, TRAIN_DIR, counted
from .data import check_layout
from .images import BadImage, decode, find_images, read_bytes, rgb_pixels

NEAR_BITS = 4      # perceptual hashes (64 bits) this close are the same picture, resized or recompressed
IMBALANCE = 3.0    # largest class / smallest: at 3:1 a model that always answers the big class scores 75%
SHOWN = 5          # examples listed for each finding; the counts are always complete
HASH_SIDE = 64     # JPEGs are decoded shrunk to >= 64 px: phash looks at 32x32 greys only
BLOCK = 256        # hashes compared at once in near_pairs (BLOCK x photos uint64s in memory)


@dataclass
class Photo:
    path: Path
    split: str               # TRAIN_DIR or TEST_DIR
    label: str               # its class folder
    size: tuple = None       # (width, height) as stored
    digest: str = ""         # of the file's bytes: exact copies
    phash: int = 0           # 64-bit perceptual hash: near copies
    error: BadImage = None   # unreadable


def parallel(function, items):
    """function over items on a thread pool, in order. Ctrl-C cancels the photos not yet started
    (a plain `with` pool would first finish every one of them)."""
    pool = ThreadPoolExecutor(os.cpu_count())
    try:
        return list(pool.map(function, items))
    finally:
        pool.shutdown(cancel_futures=True)


def inspect(photo):
    """Fill in a Photo from one read of its file: its bytes hashed, and one full decode (shrunk), as training's check does."""
    import imagehash  # scipy and PyWavelets: imported only for --check

    try:
        data = read_bytes(photo.path)
        image = decode(data, draft_size=HASH_SIDE, name=photo.path)
        photo.size, photo.digest = image.info["full_size"], hashlib.sha1(data).hexdigest()
        # The pixels training sees (upright, 8-bit RGB): a photo turned by its EXIF tag matches its turned copy.
        photo.phash = int(str(imagehash.phash(Image.fromarray(rgb_pixels(image)))), 16)
    except BadImage as error:
        photo.error = error
    except Exception as error:  # hostile bytes Pillow opened but cannot convert: training could not either
        photo.error = BadImage(photo.path, f"damaged image ({type(error).__name__}: {error})")
    return photo


def near_pairs(hashes, bits=NEAR_BITS):
    """Index pairs (i, j), i < j, of hashes at most `bits` bits apart: every pair compared, a block
    at a time with numpy's popcount (23,000 photos take a few seconds)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    pairs = []
    for start in range(0, len(hashes), BLOCK):
        distance = np.bitwise_count(hashes[start:start + BLOCK, None] ^ hashes[None, start:])
        rows, columns = np.nonzero(distance <= bits)
        later = rows < columns
        pairs += zip((start + rows[later]).tolist(), (start + columns[later]).tolist())
    return pairs


def exact_pairs(photos):
    """(first, copy) for each photo whose bytes an earlier one already has."""
    first = {}
    pairs = []
    for photo in photos:
        if photo.digest in first:
            pairs.append((first[photo.digest], photo))
        else:
            first[photo.digest] = photo
    return pairs


def counts(photos, class_names):
    """{split: {class: readable photos}}."""
    table = {split: dict.fromkeys(class_names, 0) for split in (TRAIN_DIR, TEST_DIR)}
    for photo in photos:
        if photo.error is None:
            table[photo.split][photo.label] += 1
    return table


def imbalance(table):
    """The line on class balance, and whether it is a PROBLEM."""
    ratios = {split: max(row.values()) / max(1, min(row.values())) for split, row in table.items()}
    worst = max(ratios, key=ratios.get)
    numbers = ", ".join(f"{name} {count}" for name, count in table[worst].items())
    if ratios[worst] >= IMBALANCE:
        return (f"{worst} is imbalanced: {numbers} ({ratios[worst]:.1f}:1); accuracy then mostly counts the big class: "
                "add photos to the small ones or leave some of the big one out"), True
    return f"the classes are balanced (largest/smallest: {ratios[TRAIN_DIR]:.1f} in {TRAIN_DIR}, {ratios[TEST_DIR]:.1f} in {TEST_DIR})", False


def tiny(photos, image_size):
    """Photos whose shorter side is under half the model's input: blown up over 2x, they are mostly blur."""
    return [photo for photo in photos if photo.size and min(photo.size) < image_size / 2]


def quick_check(train_samples, test_samples, class_names, image_size):
    """The short form, at the start of every training run: a warning line (stderr) for a strong
    imbalance, tiny photos, and exact copies shared by the sets. Returns the lines printed. The
    samples' photo checks (images.check_photo) hold each photo's size and hash: no file is read again."""
    photos = [Photo(sample.path, split, class_names[sample.label], sample.photo.size, sample.photo.sha1)
              for split, samples in ((TRAIN_DIR, train_samples), (TEST_DIR, test_samples)) for sample in samples]
    lines = []
    line, serious = imbalance(counts(photos, class_names))
    if serious:
        lines.append(line)
    shared = {copy.path for first, copy in exact_pairs(photos) if first.split != copy.split}
    if shared:
        copies = f"is an exact copy of a {TRAIN_DIR} photo" if len(shared) == 1 else f"are exact copies of {TRAIN_DIR} photos"
        lines.append(f"{counted(len(shared), TEST_DIR + ' photo')} {copies}, so the test score is "
                     "too high; `python train_CNN.py --check` with the same --data lists them")
    small = tiny(photos, image_size)
    if small:
        are = "is" if len(small) == 1 else "are"
        lines.append(f"{counted(len(small), 'photo')} {are} smaller than {image_size // 2} px on a side (the model sees them "
                     f"blown up), such as {small[0].path}")
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)
    return lines


def scan(data_dir, class_names):
    """A Photo for every photo file of both sets, not yet read."""
    photos = []
    for split in (TRAIN_DIR, TEST_DIR):
        for name in class_names:
            paths, _ = find_images([Path(data_dir, split, name)])
            photos += [Photo(path, split, name) for path in paths]
    return photos


def check_dataset(data_dir, image_size):
    """The full check: print the report; return the exit code (0, or 1 when a PROBLEM was found)."""
    started = time.time()
    class_names = check_layout(data_dir)
    photos = scan(data_dir, class_names)
    print(f"Checking {counted(len(photos), 'photo')} in {data_dir}...", file=sys.stderr)
    photos = parallel(inspect, photos)
    report, problems = findings(photos, class_names, image_size, Path(data_dir))
    print(f"Checked {counted(len(photos), 'photo')} of {data_dir} in {time.time() - started:.0f} s "
          f"(model input {image_size}x{image_size} px)")
    print("\n".join(report))
    print(f"Result: {problems} {'problem' if problems == 1 else 'problems'} (exit 1)" if problems else
          "Result: nothing serious (exit 0)")
    return 1 if problems else 0


def findings(photos, class_names, image_size, root):
    """The report's lines, and how many PROBLEMs they hold."""
    def name(photo):
        return str(photo.path.relative_to(root)) if photo.path.is_relative_to(root) else str(photo.path)

    def pair_line(pair):
        first, second = sorted(pair, key=lambda photo: (photo.split != TEST_DIR, str(photo.path)))  # Test_Set first
        return f"{name(first)} = {name(second)}" + ("  (labelled differently!)" if first.label != second.label else "")

    def finding(kind, text, examples=()):
        lines.append(f"{kind}: {text}")
        lines.extend(f"  {example}" for example in examples[:SHOWN])
        if len(examples) > SHOWN:
            lines.append(f"  ... and {len(examples) - SHOWN} more")

    table = counts(photos, class_names)
    width = max(12, *(len(label) + 2 for label in class_names))
    lines = [" " * width + f"{TRAIN_DIR:>14}{TEST_DIR:>10}"]
    lines += [f"{label:<{width}}{table[TRAIN_DIR][label]:>14}{table[TEST_DIR][label]:>10}" for label in class_names]
    text, serious = imbalance(table)
    finding("PROBLEM" if serious else "ok", text)
    problems = int(serious)

    bad = [photo for photo in photos if photo.error is not None]
    if bad:
        finding("note", f"{counted(len(bad), 'unreadable file')}, which training skips:", [f"{name(p)}: {p.error.reason}" for p in bad])
    photos = [photo for photo in photos if photo.error is None]
    near = [(photos[i], photos[j]) for i, j in near_pairs([photo.phash for photo in photos])
            if photos[i].digest != photos[j].digest]  # the same bytes count as exact copies
    for kind, pairs in (("exact", exact_pairs(photos)), ("near", near)):
        what = "exact copies" if kind == "exact" else f"near copies (perceptual hashes within {NEAR_BITS} of 64 bits)"
        shared = [pair for pair in pairs if pair[0].split != pair[1].split]
        if shared:
            test_photos = {photo.path for pair in shared for photo in pair if photo.split == TEST_DIR}
            have = f"{counted(len(test_photos), TEST_DIR + ' photo')} {'has' if len(test_photos) == 1 else 'have'}"
            finding("PROBLEM", f"{have} {what} in {TRAIN_DIR}: the test score counts them as new photos; delete them from one set:",
                    [pair_line(pair) for pair in shared])
            problems += 1
        else:
            finding("ok", f"no {kind} copies shared by {TRAIN_DIR} and {TEST_DIR}")
        within = [pair for pair in pairs if pair[0].split == pair[1].split]
        if within:
            finding("note", f"{counted(len(within), 'pair')} of {what} within a set (a photo counted twice; one held out for "
                            "validation inflates it):", [pair_line(pair) for pair in within])

    small = tiny(photos, image_size)
    if small:
        finding("note", f"{counted(len(small), 'photo')} smaller than {image_size // 2} px on a side, which the model sees blown up:",
                [f"{name(photo)}: {photo.size[0]}x{photo.size[1]}" for photo in small])
    return lines, problems
