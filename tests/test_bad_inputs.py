"""Every kind of file a user may have in a photo folder: odd but good ones are read the way the
model expects them (by TensorFlow, or by Pillow inside the same tf.data pipeline), bad ones are
named in one line each, and neither script crashes on them."""
import errno
import io
import os
import shutil
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classifier.data import image_dataset, labelled_samples, load_image
from classifier.images import BadImage, check_images, check_photo, find_images
from conftest import COLOURS, make_dataset, make_photo

ORIENTATION = 0x0112
LATIN1_NAME = os.fsdecode(b"caf\xe9.jpg")  # a file name that is not UTF-8, from an old camera or a Windows zip


def solid(path, colour, size=(40, 30), mode="RGB", **save_options):
    """One flat colour: what it should come back as is known exactly."""
    image = Image.new("RGB", size, colour).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save_options)
    return path


def quadrants(width=64, height=32):
    """A non-square picture with four differently coloured quarters, so any turn or flip shows."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:height // 2, :width // 2] = (230, 30, 30)
    pixels[:height // 2, width // 2:] = (30, 230, 30)
    pixels[height // 2:, :width // 2] = (30, 30, 230)
    pixels[height // 2:, width // 2:] = (230, 230, 30)
    return pixels


def rotated_photo(path, orientation):
    """A JPEG stored sideways with an EXIF Orientation tag, as phone cameras write them."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(quadrants()).save(path, exif=exif, quality=95)
    return path


def upright(turn, size):
    """quadrants() turned as an EXIF-aware viewer shows it, area-shrunk to size x size."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(turn(quadrants()))).resize((size, size), Image.Resampling.BOX), dtype=int)


def four_bit_bmp(path, colour, size=(40, 30)):
    """A 16-colour BMP (Pillow reads them but cannot write them): every pixel palette entry 0."""
    width, height = size
    palette = bytes((colour[2], colour[1], colour[0], 0)) + bytes(4 * 15)  # BGRX entries
    pixels = bytes((width * 4 + 31) // 32 * 4 * height)  # rows padded to 4 bytes, all index 0
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 4, 0, len(pixels), 2835, 2835, 16, 0)
    offset = 14 + len(info) + len(palette)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels)
    return path


def sixteen_bit_grey(path, value=32768, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0]), value, np.uint16)).save(path)
    return path


def bomb_png(path, side=50_000):
    """A 100-byte PNG whose header claims side x side pixels: Pillow must refuse it before decoding."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def truncated_jpeg(path):
    make_photo(path, (200, 100, 50))
    path.write_bytes(path.read_bytes()[:200])
    return path


def reads_as(path, colour, size=8, tolerance=6):
    image = load_image(path, size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - colour).max() <= tolerance, (image[0, 0], colour)
    return image


def check_one(path, image_size=32):
    """What the shared photo check (training's pre-scan and predict.py) says of one file: a CheckedPhoto or a BadImage."""
    [(checked, result)] = list(check_images([path], image_size))
    assert checked == path
    return result


# Bad files: one BadImage naming the file and the reason, from the check and from the reader.

@pytest.mark.parametrize("make, reason", [
    (lambda path: path.write_bytes(b""), "empty file (0 bytes)"),
    (truncated_jpeg, "damaged or incomplete image"),
    (lambda path: path.write_text("this is a shopping list, not a photo"), "not an image"),
    (lambda path: path.write_bytes(os.urandom(3000)), "not an image"),
])
def test_bad_files_are_one_bad_image_naming_the_file(tmp_path, make, reason):
    path = tmp_path / "photo.jpg"
    make(path)
    for read in (lambda path: check_photo(path, 32), lambda path: load_image(path, 32)):
        with pytest.raises(BadImage) as caught:
            read(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and reason in message and "\n" not in message
        assert message.count(str(path)) == 1  # Pillow's own text repeats the path; ours names it once
    assert isinstance(check_one(path), BadImage) and reason in check_one(path).reason


def test_an_unreadable_file_says_so(tmp_path, monkeypatch):
    path = make_photo(tmp_path / "locked.jpg", (0, 0, 0))
    if os.geteuid() == 0:  # root reads a chmod 000 file anyway: refuse its open() as the kernel refuses other users
        real_open = os.open

        def refuse(name, *args, **kwargs):
            if os.fspath(name) == os.fspath(path):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(name, *args, **kwargs)
        monkeypatch.setattr(os, "open", refuse)
    else:
        path.chmod(0)
    try:
        for read in (lambda path: check_photo(path, 8), lambda path: load_image(path, 8)):
            with pytest.raises(BadImage, match="permission denied: make the file readable"):
                read(path)
        assert "permission denied" in check_one(path).reason
    finally:
        path.chmod(0o644)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200
    for read in (lambda path: check_photo(path, 32), lambda path: load_image(path, 32)):
        with pytest.raises(BadImage, match="decompression bomb"):
            read(bomb)


def test_images_over_pillows_pixel_limit_are_refused(tmp_path, monkeypatch):
    path = solid(tmp_path / "wide.png", (10, 20, 30), size=(60, 40))  # 2400 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # over the limit: Pillow only warns
    with pytest.raises(BadImage, match="decompression bomb"):
        load_image(path, 8)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # over twice the limit: Pillow raises
    with pytest.raises(BadImage, match="decompression bomb"):
        check_photo(path, 8)


def test_check_images_keeps_the_order_and_reports_each_file(tmp_path):
    paths = [solid(tmp_path / "plain.png", (1, 2, 3)), tmp_path / "empty.jpg", rotated_photo(tmp_path / "turned.jpg", 6),
             tmp_path / "gone.jpg"]
    paths[1].write_bytes(b"")
    results = list(check_images(paths, 32))
    assert [path for path, _ in results] == paths
    assert results[0][1].pillow is False and results[2][1].pillow is True
    assert "empty file" in results[1][1].reason and "file not found" in results[3][1].reason


def test_one_read_of_a_photo_gives_its_size_decoder_hash_and_pixels_from_a_path_or_bytes(tmp_path, monkeypatch):
    import hashlib

    from classifier import images
    from classifier.images import check_photo

    photos = [make_photo(tmp_path / "plain.jpg", COLOURS["Dogs"], size=(50, 30)), rotated_photo(tmp_path / "turned.jpg", 6)]
    read, real_read = [], images.read_bytes
    monkeypatch.setattr(images, "read_bytes", lambda source, name=None: read.append(source) or real_read(source, name))
    for path, pillow in zip(photos, (False, True)):
        read.clear()
        from_path = check_photo(path, 32, keep_pixels=True)
        assert read == [path]  # one read: no second one for the hash or for TensorFlow's trial decode
        assert from_path.pillow is pillow and from_path.sha1 == hashlib.sha1(path.read_bytes()).hexdigest()
        assert from_path.size == Image.open(path).size and from_path.pixels.dtype == np.uint8
        from_bytes = check_photo(path.read_bytes(), 32, keep_pixels=True)
        assert from_bytes == from_path and np.array_equal(from_bytes.pixels, from_path.pixels)
        np.testing.assert_array_equal(load_image(path.read_bytes(), 16), load_image(path, 16))
    with pytest.raises(BadImage) as caught:
        check_photo(b"not a photo", 32, name="upload.jpg")
    assert str(caught.value).startswith("upload.jpg: not an image")


# Files TensorFlow cannot decode as they are: decoded by Pillow, in the same pipeline.

def test_a_format_tensorflow_cannot_decode_is_read_with_pillow(tmp_path):
    path = solid(tmp_path / "photo.jpg", (200, 100, 50), format="WEBP", lossless=True)  # a WebP named .jpg
    assert check_photo(path, 32).pillow is True
    reads_as(path, (200, 100, 50))


def test_a_very_large_jpeg_is_decoded_shrunk(tmp_path):
    path = solid(tmp_path / "huge.jpg", (40, 160, 220), size=(8000, 6000), quality=90)  # 48 megapixels
    assert check_photo(path, 96).pillow is True  # Pillow decodes it at 1/8 size: far cheaper than TensorFlow's full decode
    reads_as(path, (40, 160, 220), size=96)
    small = solid(tmp_path / "small.jpg", (40, 160, 220), size=(120, 90), quality=90)
    assert check_photo(small, 96).pillow is False  # nothing to gain: TensorFlow reads it


@pytest.mark.parametrize("mode", ["1", "P", "L"])
def test_one_and_eight_bit_bmps_are_read_with_pillow(tmp_path, mode):
    # TensorFlow's BMP decoder reads only 24/32-bit colour; these would stop an epoch with an error.
    colour = (255, 255, 255) if mode == "1" else (204, 102, 51) if mode == "P" else (100, 100, 100)
    path = solid(tmp_path / "odd.bmp", colour, mode=mode)
    assert check_photo(path, 32).pillow is True
    reads_as(path, colour)


def test_four_bit_bmp_is_read_with_pillow(tmp_path):
    path = four_bit_bmp(tmp_path / "sixteen.bmp", (200, 100, 50))
    with Image.open(path) as image:
        assert image.mode == "P"  # a real 4-bit BMP, as Pillow sees it
    assert check_photo(path, 32).pillow is True
    reads_as(path, (200, 100, 50), tolerance=0)


def test_colour_bmps_are_read_with_tensorflow(tmp_path):
    for mode in ("RGB", "RGBA"):
        path = solid(tmp_path / f"{mode}.bmp", (10, 200, 30), mode=mode)
        assert check_photo(path, 32).pillow is False
        reads_as(path, (10, 200, 30), size=32, tolerance=0)


# Odd but good files: read as RGB, image_size x image_size, uint8, in the right colours.

@pytest.mark.parametrize("mode, options, colour", [
    ("RGBA", {"format": "PNG"}, (204, 102, 51)),
    ("P", {"format": "PNG"}, (204, 102, 51)),                        # palette
    ("P", {"format": "PNG", "transparency": 0}, (204, 102, 51)),     # palette with a transparent entry
    ("L", {"format": "PNG"}, (100, 100, 100)),                       # greyscale
    ("LA", {"format": "PNG"}, (100, 100, 100)),
    ("L", {"format": "JPEG"}, (100, 100, 100)),
    ("CMYK", {"format": "JPEG", "quality": 95}, (200, 100, 50)),
    ("RGB", {"format": "GIF"}, (204, 102, 51)),
])
def test_odd_modes_are_read_in_their_colours(tmp_path, mode, options, colour):
    path = solid(tmp_path / f"photo.{options['format'].lower()}", colour, mode=mode, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would be a stray line in predict.py's output
        assert check_photo(path, 32).pillow is False  # TensorFlow decodes it as it is (CMYK included)...
        reads_as(path, colour, size=32)
        reads_as(path, colour, size=8)  # ...and Pillow where it is shrunk while decoding (JPEGs): same colours


def test_palette_png_with_transparency_bytes_gives_no_warning(tmp_path):
    path = solid(tmp_path / "logo.png", (204, 102, 51), mode="P", transparency=bytes(range(256)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reads_as(path, (204, 102, 51))


def test_sixteen_bit_png_is_scaled_to_eight_bits_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    values = np.array([[0, 32768, 65535]], dtype=np.uint16).repeat(30, axis=0).repeat(10, axis=1)
    Image.fromarray(values).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    assert check_photo(path, 3).pillow is True
    image = load_image(path, 3)  # one pixel per band of grey
    np.testing.assert_allclose(image[1, :, 0], [0, 128, 255], atol=1)


def test_multi_picture_jpeg_from_a_camera_is_accepted(tmp_path):
    path = tmp_path / "camera.jpg"
    first, second = Image.new("RGB", (40, 30), (200, 100, 50)), Image.new("RGB", (40, 30), (0, 0, 0))
    first.save(path, format="MPO", save_all=True, append_images=[second], quality=95)
    with Image.open(path) as image:
        assert image.format == "MPO"
    assert check_photo(path, 32).pillow is False
    reads_as(path, (200, 100, 50), size=32)


@pytest.mark.parametrize("orientation, turn", [
    (3, lambda pixels: np.rot90(pixels, 2)),
    (6, lambda pixels: np.rot90(pixels, -1)),   # the usual portrait phone photo: turn 90 degrees clockwise
    (8, lambda pixels: np.rot90(pixels, 1)),
    (2, lambda pixels: pixels[:, ::-1]),
])
def test_exif_rotated_photo_is_read_upright(tmp_path, orientation, turn):
    path = rotated_photo(tmp_path / "portrait.jpg", orientation)
    as_stored = np.asarray(Image.fromarray(quadrants()).resize((8, 8), Image.Resampling.BOX), dtype=int)
    got = load_image(path, 8).astype(int)
    assert np.abs(got - upright(turn, 8)).max() <= 12
    assert np.abs(got - as_stored).max() > 100  # the test tells the two apart
    assert check_photo(path, 32).pillow is True  # TensorFlow ignores EXIF: Pillow turns it


def test_a_photo_with_a_damaged_exif_block_is_read_without_a_warning(tmp_path):
    path = tmp_path / "odd.jpg"
    damaged = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03garbage"  # 5 tags promised, one half there
    Image.new("RGB", (40, 30), (200, 100, 50)).save(path, exif=damaged, quality=95)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reads_as(path, (200, 100, 50), size=32)
        assert check_photo(path, 32).pillow is False
    assert [str(warning.message) for warning in caught] == []  # Pillow's "Corrupt EXIF data" would be a stray line


# Finding files in folders.

def test_folders_yield_only_image_names_and_skip_the_rest_silently(tmp_path):
    good = [make_photo(tmp_path / "a.jpg", (0, 0, 0)), make_photo(tmp_path / "sub" / "b.png", (0, 0, 0), format="PNG")]
    for name in ("notes.txt", ".DS_Store", "Thumbs.db", "._a.jpg", "desktop.ini", "video.mp4"):
        (tmp_path / name).write_bytes(b"\0\5\26\7 not an image")
    images, missing = find_images([tmp_path])
    assert images == good and missing == []


def test_a_file_named_explicitly_is_always_returned(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    images, missing = find_images([tmp_path / "notes.txt", tmp_path / "nowhere.jpg"])
    assert images == [tmp_path / "notes.txt"] and missing == [tmp_path / "nowhere.jpg"]
    with pytest.raises(BadImage, match="not an image"):
        load_image(images[0], 8)


def test_a_folder_with_no_images_yields_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "readme.txt").write_text("no photos")
    assert find_images([tmp_path]) == ([], [])


def test_awkward_file_names_are_found_and_read(tmp_path):
    names = ["with spaces.jpg", "chat é 猫.jpg", "-starts-with-dash.jpg", "--help.jpg", "x" * 200 + ".jpg", LATIN1_NAME]
    for name in names:
        make_photo(tmp_path / name, COLOURS["Cats"])
    images, _ = find_images([tmp_path])
    assert sorted(path.name for path in images) == sorted(names)
    for path in images:
        assert load_image(path, 8).shape == (8, 8, 3)


def test_symlinks_dangling_links_and_loops(tmp_path):
    photos = tmp_path / "photos"
    make_photo(photos / "real.jpg", (0, 0, 0))
    os.symlink(photos / "real.jpg", photos / "link.jpg")
    os.symlink(tmp_path / "gone.jpg", photos / "dangling.jpg")
    os.symlink(photos, photos / "loop")  # a folder that contains itself
    (photos / "nested").mkdir()
    os.symlink("..", photos / "nested" / "up")
    images, _ = find_images([photos])
    assert sorted(path.name for path in images) == ["dangling.jpg", "link.jpg", "real.jpg"]  # each once, no endless walk
    assert load_image(photos / "link.jpg", 8).shape == (8, 8, 3)
    for read in (lambda path: check_photo(path, 8), lambda path: load_image(path, 8)):
        with pytest.raises(BadImage, match="broken link"):
            read(photos / "dangling.jpg")


# Training sees each photo the way predict.py does: one reader, TensorFlow or Pillow inside tf.data.

def test_training_pipeline_reads_every_kind_as_prediction_does(tmp_path, capsys):
    split = tmp_path / "Training_Set"
    cats = split / "Cats"
    expected = {  # file -> (colour, or None for a picture checked below, and whether Pillow must decode it)
        rotated_photo(cats / "a_portrait.jpg", 6): (None, True),
        solid(cats / "b_cmyk.jpg", (200, 100, 50), mode="CMYK", quality=95): ((200, 100, 50), False),
        solid(cats / "c_palette.png", (204, 102, 51), mode="P"): ((204, 102, 51), False),
        solid(cats / "d_alpha.png", (204, 102, 51), mode="RGBA"): ((204, 102, 51), False),
        solid(cats / "e_grey.png", (100, 100, 100), mode="L"): ((100, 100, 100), False),
        sixteen_bit_grey(cats / "f_deep.png"): ((128, 128, 128), True),  # 16-bit grey scaled, not clipped to 255
        solid(cats / "g_mono.bmp", (255, 255, 255), mode="1"): ((255, 255, 255), True),
        four_bit_bmp(cats / "h_sixteen.bmp", (200, 100, 50)): ((200, 100, 50), True),
        solid(cats / "i_palette.bmp", (204, 102, 51), mode="P"): ((204, 102, 51), True),
        solid(cats / "j_webp.jpg", (200, 100, 50), format="WEBP", lossless=True): ((200, 100, 50), True),
        solid(cats / "k_big.jpg", (40, 160, 220), size=(800, 600), quality=90): ((40, 160, 220), True),  # drafted
        solid(cats / "l_small_cmyk.jpg", (200, 100, 50), size=(12, 12), mode="CMYK", quality=95): ((200, 100, 50), False),
    }
    dogs = [solid(split / "Dogs" / "a.jpg", COLOURS["Dogs"]), solid(split / "Dogs" / LATIN1_NAME, COLOURS["Dogs"])]
    (split / "Dogs" / "._a.jpg").write_bytes(b"\0\5\26\7\0\2\0\0Mac OS X")  # macOS metadata, not a photo: ignored
    (split / "Dogs" / "empty.jpg").write_bytes(b"")

    samples, bad = labelled_samples(split, ["Cats", "Dogs"], 16)
    assert bad == 1 and f"warning: skipping {split / 'Dogs' / 'empty.jpg'}: empty file" in capsys.readouterr().err
    assert [sample.path for sample in samples] == sorted(expected) + sorted(dogs)
    assert [sample.label for sample in samples] == [0] * len(expected) + [1] * len(dogs)
    assert [sample.pillow for sample in samples[:len(expected)]] == [expected[path][1] for path in sorted(expected)]

    images, labels = next(iter(image_dataset(samples, 16, batch_size=64)))
    images = images.numpy()
    assert images.shape == (len(samples), 16, 16, 3) and labels.numpy().tolist() == [sample.label for sample in samples]
    for sample, image in zip(samples, images):
        assert np.abs(image - load_image(sample.path, 16)).max() <= 1, sample.path.name  # what predict.py sees
        colour = expected.get(sample.path, (COLOURS["Dogs"], False))[0]
        if colour is not None:
            assert np.abs(image.mean(axis=(0, 1)) - colour).max() <= 6, (sample.path.name, image.mean(axis=(0, 1)))
    assert np.abs(images[0] - upright(lambda pixels: np.rot90(pixels, -1), 16)).max() <= 12  # the portrait, upright


def test_predict_files_reads_photos_as_training_does(tmp_path, trained):
    """predict.py's labels come from the same pixels: predict_files' probabilities are the model's on image_dataset."""
    from classifier.data import Sample
    from classifier.prediction import load_classifier, predict_files, probabilities

    output, _ = trained
    model, info = load_classifier(output / "model.h5", compiled=False)
    paths = [rotated_photo(tmp_path / "portrait.jpg", 6), sixteen_bit_grey(tmp_path / "deep.png"),
             four_bit_bmp(tmp_path / "sixteen.bmp", COLOURS["Cats"]), make_photo(tmp_path / "plain.jpg", COLOURS["Dogs"])]
    predictions = list(predict_files(model, info, paths, batch_size=3))
    samples = [Sample(path, 0, photo) for path, photo in check_images(paths, info.image_size)]
    images, _ = next(iter(image_dataset(samples, info.image_size, batch_size=8)))
    expected = probabilities(model.predict_on_batch(images))
    assert [prediction.path for prediction in predictions] == paths
    np.testing.assert_allclose(np.stack([prediction.probabilities for prediction in predictions]), expected, atol=1e-5)


def test_one_batch_is_labelled_without_tracing_the_model_and_alike(tmp_path, trained, monkeypatch):
    """predict.py ONE_PHOTO calls the model eagerly (a traced graph pays only over several batches)."""
    from classifier import prediction
    from classifier.prediction import inference_model, load_classifier, predict_batch, predict_files

    output, _ = trained
    network, info = load_classifier(output / "model.h5", compiled=False)
    built = []  # the model predict_files runs: the network with its unknown score
    monkeypatch.setattr(prediction, "inference_model", lambda *args: built.append(inference_model(*args)) or built[-1])
    model = inference_model(network, info)
    paths = [make_photo(tmp_path / f"{index}.jpg", COLOURS["Dogs"], seed=index) for index in range(3)]
    from classifier.data import Sample

    images, _ = next(iter(image_dataset([Sample(path, 0) for path in paths], info.image_size, batch_size=3)))
    eager = [predict_batch(model, images, eager=True), predict_batch(model, images, tta=True, eager=True)]
    one_batch = np.stack([result.probabilities for result in predict_files(network, info, paths, batch_size=8)])
    assert built[-1].predict_function is None  # nothing traced for one batch of photos
    for (scores, unknown), (traced_scores, traced_unknown) in zip(eager, [predict_batch(model, images),
                                                                          predict_batch(model, images, tta=True)]):
        np.testing.assert_allclose(scores, traced_scores, atol=1e-5)
        np.testing.assert_allclose(unknown, traced_unknown, atol=1e-5)
    np.testing.assert_allclose(one_batch, eager[0][0], atol=1e-5)
    list(predict_files(network, info, paths, batch_size=2))
    assert built[-1].predict_function is not None  # two batches: traced once, used twice


def test_predict_files_reads_and_decodes_each_photo_once(tmp_path, trained, monkeypatch):
    """The check's pixels go to the model, by either decoder: reading or decoding a photo twice would
    double predict.py's input cost."""
    from classifier import images
    from classifier.prediction import load_classifier, predict_files

    output, _ = trained
    model, info = load_classifier(output / "model.h5", compiled=False)
    paths = [rotated_photo(tmp_path / f"portrait{index}.jpg", 6) for index in range(3)]  # Pillow decodes these
    paths += [make_photo(tmp_path / f"plain{index}.jpg", COLOURS["Dogs"], seed=index) for index in range(2)]  # TensorFlow these
    read, real_read = [], images.read_bytes
    monkeypatch.setattr(images, "read_bytes", lambda source, name=None: read.append(source) or real_read(source, name))
    first = [prediction.probabilities for prediction in predict_files(model, info, paths, batch_size=2)]
    assert sorted(map(str, read)) == sorted(map(str, paths))  # once each
    read.clear()
    monkeypatch.setattr(images, "KEPT_PIXELS_BYTES", 0)  # pictures too big to keep are read again, to the same pixels
    again = [prediction.probabilities for prediction in predict_files(model, info, paths, batch_size=2)]
    assert sorted(map(str, read)) == sorted(map(str, paths + paths[:3]))  # tf.data reads the others itself
    np.testing.assert_allclose(first, again, atol=1e-6)


# The scripts, on folders mixing every case.

def mixed_folder(folder):
    """Good photos of each kind, bad files, and things to ignore. Returns (good names, bad names)."""
    good = {
        "plain.jpg": make_photo(folder / "plain.jpg", COLOURS["Cats"]),
        "with spaces é.png": solid(folder / "with spaces é.png", (204, 102, 51), mode="RGBA"),
        "-dash.jpg": make_photo(folder / "-dash.jpg", COLOURS["Dogs"]),
        "palette.gif": solid(folder / "palette.gif", (204, 102, 51), mode="P"),
        "grey.jpg": solid(folder / "grey.jpg", (90, 90, 90), mode="L"),
        "cmyk.jpg": solid(folder / "cmyk.jpg", (200, 100, 50), mode="CMYK"),
        "portrait.jpg": rotated_photo(folder / "portrait.jpg", 6),
        "deep.png": sixteen_bit_grey(folder / "deep.png"),
        "mono.bmp": solid(folder / "mono.bmp", (255, 255, 255), mode="1"),
        "sixteen.bmp": four_bit_bmp(folder / "sixteen.bmp", (200, 100, 50)),
        "webp.jpg": solid(folder / "webp.jpg", (200, 100, 50), format="WEBP"),
    }
    bad = {"empty.jpg", "cut.jpg", "text.jpg", "bomb.png", "dangling.jpg"}
    (folder / "empty.jpg").write_bytes(b"")
    truncated_jpeg(folder / "cut.jpg")
    (folder / "text.jpg").write_text("not a photo")
    bomb_png(folder / "bomb.png")
    os.symlink(folder / "gone.jpg", folder / "dangling.jpg")
    for name in ("notes.txt", ".DS_Store", "Thumbs.db", "._plain.jpg"):
        (folder / name).write_bytes(b"\0\5\26\7\0\2\0\0Mac OS X")
    os.symlink(folder, folder / "loop")
    return good, bad


def test_predict_labels_the_good_files_names_each_bad_one_and_exits_1(tmp_path, trained, run):
    output, _ = trained
    good, bad = mixed_folder(tmp_path / "photos")
    result = run("predict.py", tmp_path / "photos", "--model", output / "model.h5", "--csv", tmp_path / "labels.csv")
    assert result.returncode == 1, result.stderr
    labelled = [Path(line.split("\t")[0]).name for line in result.stdout.splitlines()]
    assert sorted(labelled) == sorted(good), result.stdout
    errors = [line for line in result.stderr.splitlines() if not line.startswith("Model: ")]
    assert len(errors) == len(bad) + 1, result.stderr
    for name in bad:
        assert sum(line.startswith("error: ") and name in line for line in errors) == 1, (name, errors)
    assert errors[-1] == f"{len(good)} images labelled, {len(bad)} could not be read"
    for ignored in ("notes.txt", ".DS_Store", "Thumbs.db", "._plain.jpg"):
        assert ignored not in result.stderr
    assert (tmp_path / "labels.csv").read_text().count("\n") == len(good) + 1


def test_a_file_name_that_is_not_utf8_is_printed_as_its_bytes(tmp_path, trained, monkeypatch):
    import predict

    output, _ = trained
    photo = make_photo(tmp_path / LATIN1_NAME, COLOURS["Cats"])
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # strict, as stdout in a UTF-8 terminal
    monkeypatch.setattr(sys, "stdout", stdout)
    code = predict.main([str(photo), "--model", str(output / "model.h5"), "--csv", str(tmp_path / "labels.csv")])
    stdout.flush()
    assert code == 0
    assert stdout.buffer.getvalue().startswith(os.fsencode(photo) + b"\t")  # as ls prints it
    assert os.fsencode(photo) in (tmp_path / "labels.csv").read_bytes()


def test_predict_takes_a_file_whose_name_starts_with_a_dash(tmp_path, trained, run, monkeypatch):
    output, _ = trained
    make_photo(tmp_path / "-photo.jpg", COLOURS["Dogs"])
    monkeypatch.chdir(tmp_path)
    result = run("predict.py", "--model", output / "model.h5", "--", "-photo.jpg")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-photo.jpg\t")


def test_train_skips_each_bad_file_with_one_warning_and_counts_them(tmp_path, run):
    data = make_dataset(tmp_path / "data", train_per_class=3, test_per_class=2)
    good, bad = mixed_folder(data / "Training_Set" / "Cats")
    result = run("train_CNN.py", "--data", data, "--output", tmp_path / "out", "--epochs", 1, "--image-size", 32, "--arch", "logistic")
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("warning: skipping")]
    assert len(skipped) == len(bad), result.stderr
    for name in bad:
        assert sum(name in line for line in skipped) == 1, (name, skipped)
    assert f"Skipped {len(bad)} unreadable files ({len(bad)} in Training_Set, 0 in Test_Set)." in result.stdout
    [counts] = [line for line in result.stdout.splitlines() if line.startswith("Training_Set: ")]
    for_training, held_out = (int(counts.split()[index]) for index in (1, 5))
    assert for_training + held_out == 3 + len(good) + 3 and held_out >= 2  # every good photo, each class validated
    assert "Test_Set: 4 images" in counts
    assert (tmp_path / "out" / "model.h5").is_file()


# Folder layouts train_CNN.py refuses before training (tests/test_train_cli.py has the others).

def refused_layout(tmp_path, run, arrange):
    data = make_dataset(tmp_path / "data", train_per_class=2, test_per_class=1)
    arrange(data)
    result = run("train_CNN.py", "--data", data, "--output", tmp_path / "out", "--epochs", 1, "--image-size", 32, "--arch", "logistic")
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "out" / "model.h5").exists()
    return result.stderr.splitlines()


def test_missing_training_set(tmp_path, run):
    lines = refused_layout(tmp_path, run, lambda data: shutil.rmtree(data / "Training_Set"))
    assert lines == [f"error: {tmp_path / 'data' / 'Training_Set'} not found: --data must hold Training_Set/ and Test_Set/, "
                     "each with one folder per class"]


def test_data_folder_missing(tmp_path, run):
    result = run("train_CNN.py", "--data", tmp_path / "nowhere", "--output", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.startswith(f"error: {tmp_path / 'nowhere' / 'Training_Set'} not found")


def test_a_class_folder_missing_from_one_set(tmp_path, run):
    lines = refused_layout(tmp_path, run, lambda data: shutil.rmtree(data / "Test_Set" / "Dogs"))
    assert len(lines) == 1 and "Test_Set must hold a folder per class, at least 2 (found 1: Cats)" in lines[0]


def test_the_sets_name_different_classes(tmp_path, run):
    lines = refused_layout(tmp_path, run, lambda data: make_photo(data / "Training_Set" / "Birds" / "bird.jpg", (0, 200, 0)))
    assert len(lines) == 1 and lines[0].startswith("error: the class folders differ: ")
    assert "has Birds, Cats, Dogs but" in lines[0] and "has Cats, Dogs;" in lines[0]


def test_a_class_folder_of_only_broken_files(tmp_path, run):
    def break_dogs(data):
        for path in (data / "Test_Set" / "Dogs").iterdir():
            path.write_bytes(b"")
    lines = refused_layout(tmp_path, run, break_dogs)
    assert lines[:-1] == [f"warning: skipping {tmp_path / 'data' / 'Test_Set' / 'Dogs' / 'dogs.0.jpg'}: empty file (0 bytes)"]
    assert lines[-1] == f"error: {tmp_path / 'data' / 'Test_Set' / 'Dogs'} has no readable images: put .jpg or .png photos of Dogs there"
