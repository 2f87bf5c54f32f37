"""The contact sheet (predict.py --sheet) and the JSON output (predict.py --json)."""
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import COLOURS, make_photo

from classifier import artifacts, import_tensorflow, sheet
from classifier.config import UsageError
from classifier.prediction import Prediction
from classifier.writers import WRITERS

CELL = sheet.THUMB + 2 * sheet.FRAME


def cell_origin(index, columns=sheet.COLUMNS):
    cell_h = CELL + sheet.CAPTION
    return sheet.GAP + (index % columns) * (CELL + sheet.GAP), sheet.HEADER + (index // columns) * (cell_h + sheet.GAP)


def thumbnail_of(picture, index, columns=sheet.COLUMNS):
    """The THUMB x THUMB photo area of a cell."""
    x, y = cell_origin(index, columns)
    return picture[y + sheet.FRAME:y + sheet.FRAME + sheet.THUMB, x + sheet.FRAME:x + sheet.FRAME + sheet.THUMB]


def read_sheet(path):
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB")).astype(int)


@pytest.fixture
def drawn_text(monkeypatch):
    """Every text the sheet draws, in order: the header and the captions."""
    texts, draw_text = [], ImageDraw.ImageDraw.text

    def record(self, xy, text, *args, **kwargs):
        texts.append(text)
        return draw_text(self, xy, text, *args, **kwargs)
    monkeypatch.setattr(ImageDraw.ImageDraw, "text", record)
    return texts


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained logistic model at 32 px: these tests check the outputs' form, not the labels."""
    import_tensorflow()
    import keras
    from classifier.model import make_model

    folder = tmp_path_factory.mktemp("model")
    keras.utils.set_random_seed(0)
    artifacts.save(make_model("logistic", 32, 2), artifacts.ModelInfo(["Cats", "Dogs"], 32, model="logistic"),
                   folder / "model.h5", folder / "weights.h5")
    return folder / "model.h5"


def test_grid_of_thumbnails_with_doubtful_ones_framed(tmp_path, drawn_text):
    names = ["Cats", "Dogs", "Dogs", "Cats", "Dogs", "Cats", "Cats", "Dogs"]
    confidences = [0.99, 0.55, 0.91, 0.69, 0.7, 0.8, 0.6, 0.95]
    rows = []
    for index, (name, confidence) in enumerate(zip(names, confidences)):
        photo = make_photo(tmp_path / f"{index}.png", COLOURS[name], size=(60 + 30 * index, 50), seed=index, format="PNG")
        rows.append((str(photo), name, f"{confidence:.4f}"))
    assert sheet.make_sheet(rows, tmp_path / "sheet.png") == 8

    picture = read_sheet(tmp_path / "sheet.png")
    assert picture.shape[1] == sheet.GAP + 6 * (CELL + sheet.GAP)  # 6 columns...
    assert picture.shape[0] == sheet.HEADER + 2 * (CELL + sheet.CAPTION + sheet.GAP) + sheet.GAP  # ...2 rows
    for index, (name, confidence) in enumerate(zip(names, confidences)):
        x, y = cell_origin(index)
        middle = picture[y + CELL // 2 - 10:y + CELL // 2 + 10, x + CELL // 2 - 10:x + CELL // 2 + 10]
        assert np.abs(middle.mean(axis=(0, 1)) - COLOURS[name]).max() < 25, index  # the right photo, in order
        frame = tuple(picture[y + CELL // 2, x + 1])  # the outer edge of the frame, left side
        assert (frame == sheet.DOUBT) == (confidence < sheet.LOW_CONFIDENCE), index
    assert "8 images" in drawn_text and not [text for text in drawn_text if "could not be drawn" in text]
    assert "below 70% confidence: 3" in drawn_text
    for name, confidence in zip(names, confidences):
        assert name in drawn_text and f"{confidence:.1%}" in drawn_text


def test_a_long_title_over_a_few_photos_widens_the_sheet_rather_than_cut_the_legend_off(tmp_path):
    photo = make_photo(tmp_path / "a.jpg", COLOURS["Dogs"])
    sheet.make_sheet([(photo, "Cats, is Dogs", 0.59)] * 2, tmp_path / "sheet.png", title="2 of 120 test photos wrong")
    header = read_sheet(tmp_path / "sheet.png")[:sheet.HEADER]
    inked = np.nonzero((np.abs(header - sheet.PAPER).sum(axis=2) > 60).any(axis=0))[0]  # columns with text or a swatch
    assert header.shape[1] - 1 - inked.max() >= sheet.GAP - 1, (header.shape[1], inked.max())


def test_a_long_label_wraps_in_full_and_a_mistake_names_both_classes(tmp_path, drawn_text):
    # "AmericanCurl, is …" once: the class the photo really is was cut off.
    photo = make_photo(tmp_path / "a.jpg", COLOURS["Cats"])
    sheet.make_sheet([(photo, "AmericanShorthair\nis AmericanCurl", 0.95), (photo, "Cats", 0.9),
                      (photo, "Abyssinian_long_haired_cats_from_the_shelter", 0.99)], tmp_path / "sheet.png")
    assert "AmericanShorthair" in drawn_text and "is AmericanCurl" in drawn_text
    assert not [text for text in drawn_text if "…" in text]
    font = sheet.ImageFont.load_default(size=15)
    lines = sheet.wrap("Abyssinian_long_haired_cats_from_the_shelter", font)
    assert "".join(lines) == "Abyssinian_long_haired_cats_from_the_shelter" and len(lines) == 3
    assert all(line in drawn_text for line in lines)
    assert font.getlength(lines[0]) <= sheet.THUMB - 50 and all(font.getlength(line) <= CELL for line in lines)
    # Every row is as tall as the longest label needs: here three lines, two more than a short label.
    assert read_sheet(tmp_path / "sheet.png").shape[0] == sheet.HEADER + CELL + sheet.CAPTION + 2 * sheet.LINE + 2 * sheet.GAP


def test_a_doubtful_confidence_is_never_rounded_up_to_the_threshold(tmp_path, drawn_text):
    # 0.6996 under 70 %: "unsure · 70.0%" would contradict itself.
    assert sheet.percent(0.6996, 0.7) == "69.9%" and sheet.percent(0.697, 0.7) == "69.7%"
    assert sheet.percent(0.7, 0.7) == "70.0%" and sheet.percent(0.99996, 0.7) == "100.0%"
    photo = make_photo(tmp_path / "a.jpg", COLOURS["Cats"])
    sheet.make_sheet([(photo, "Cats", 0.6996), (photo, "Dogs", 0.6949)], tmp_path / "sheet.png", doubt_below=0.695)
    assert "unsure · 69.9%" not in drawn_text and "unsure · 69.4%" in drawn_text  # 0.6996 is above 0.695: not doubtful
    assert "below 69.5% confidence: 1" in drawn_text  # the threshold as given, not rounded to 70 %
    sheet.make_sheet([(photo, "Cats", 0.6996)], tmp_path / "sheet.png")
    assert "unsure · 69.9%" in drawn_text and "69.9%" in drawn_text and "1 image" in drawn_text


def test_sheet_holds_at_most_max_images(tmp_path, monkeypatch):
    monkeypatch.setattr(sheet, "MAX_IMAGES", 3)
    photo = make_photo(tmp_path / "a.jpg", COLOURS["Dogs"])
    assert sheet.make_sheet([(str(photo), "Dogs", "0.9")] * 5, tmp_path / "sheet.png") == 3
    assert read_sheet(tmp_path / "sheet.png").shape[1] == sheet.GAP + 3 * (CELL + sheet.GAP)


def transparent_half(path, mode):
    """A square photo: its left half opaque, its right half transparent over a loud hidden colour
    (what convert("RGB") alone shows). Returns (path, the left half's colour)."""
    if mode == "P":
        image = Image.new("P", (80, 80), 1)
        image.putpalette([*COLOURS["Cats"], 255, 0, 0])  # entry 0: the photo; entry 1: red, made transparent
        image.paste(0, (0, 0, 40, 80))
        image.save(path, transparency=1)
        return path, COLOURS["Cats"]
    if mode == "LA":
        pixels = np.zeros((80, 80, 2), np.uint8)  # right half: black, transparent
        pixels[:, :40] = (100, 255)
        Image.fromarray(pixels).save(path)
        return path, (100, 100, 100)
    pixels = np.zeros((80, 80, 4), np.uint8)
    pixels[:, :40] = (*COLOURS["Cats"], 255)
    pixels[:, 40:] = (255, 0, 0, 0)
    Image.fromarray(pixels).save(path)
    return path, COLOURS["Cats"]


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_photos_are_drawn_on_the_paper_colour(tmp_path, mode):
    photo, opaque = transparent_half(tmp_path / "cut-out.png", mode)
    sheet.make_sheet([(photo, "Cats", 0.9)], tmp_path / "sheet.png")
    thumbnail = thumbnail_of(read_sheet(tmp_path / "sheet.png"), 0, columns=1)
    left, right = thumbnail[20:-20, 10:sheet.THUMB // 2 - 10], thumbnail[20:-20, sheet.THUMB // 2 + 10:-10]
    assert np.abs(left - opaque).max() <= 3  # the photo itself...
    assert np.abs(right - sheet.PAPER).max() <= 3, right.mean(axis=(0, 1))  # ...on the paper, not the hidden colour


def test_the_header_counts_the_photos_that_could_not_be_drawn(tmp_path, drawn_text):
    good = make_photo(tmp_path / "good.jpg", COLOURS["Cats"])
    gone, broken = tmp_path / "gone.jpg", tmp_path / "broken.jpg"  # removed or damaged since they were labelled
    broken.write_bytes(good.read_bytes()[:100])
    assert sheet.make_sheet([(good, "Cats", 0.9), (gone, "Dogs", 0.8), (broken, "Cats", 0.95)], tmp_path / "sheet.png") == 3
    assert "3 images (2 could not be drawn)" in drawn_text
    picture = read_sheet(tmp_path / "sheet.png")
    assert np.abs(thumbnail_of(picture, 0).mean(axis=(0, 1)) - COLOURS["Cats"]).max() < 25
    for index in (1, 2):
        assert (thumbnail_of(picture, index) == 200).all()  # a grey square stands in for each


def test_sheet_path_is_checked_before_anything_runs(tmp_path):
    with pytest.raises(UsageError, match="name the contact sheet .png or .jpg"):
        sheet.check_sheet_path(tmp_path / "sheet.txt")
    with pytest.raises(UsageError, match="not found"):
        sheet.check_sheet_path(tmp_path / "missing" / "sheet.png")
    sheet.check_sheet_path(tmp_path / "sheet.JPG")


def test_the_sheet_writer_draws_predictions_as_label_and_confidence(tmp_path, drawn_text):
    photos = [make_photo(tmp_path / f"{name}.jpg", colour) for name, colour in COLOURS.items()]
    writer = WRITERS["sheet"](tmp_path / "sheet.png")
    writer.add(Prediction(photos[0], np.array([0.8, 0.2]), ["Cats", "Dogs"]))
    writer.add(Prediction(photos[1], np.array([0.35, 0.65]), ["Cats", "Dogs"]))
    writer.close()
    assert drawn_text[:2] == ["Cats", "80.0%"]
    badge = drawn_text.index("unsure · 65.0%")  # below 70%: marked doubtful
    assert drawn_text[badge + 1:badge + 3] == ["Dogs", "65.0%"]
    picture = read_sheet(tmp_path / "sheet.png")
    x, y = cell_origin(1)
    assert tuple(picture[y + CELL // 2, x + 1]) == sheet.DOUBT  # 65%: doubtful


def test_predict_cli_json_and_sheet(tmp_path, run, model_file):
    photos = tmp_path / "photos"
    for index, (name, colour) in enumerate(COLOURS.items()):
        make_photo(photos / f"{name} é.jpg", colour, seed=200 + index)
    (photos / "broken.jpg").write_text("not a photo")
    result = run("predict.py", photos, "--model", model_file, "--json", "--sheet", tmp_path / "sheet.png")
    assert result.returncode == 1  # the broken file, named on stderr as without --json
    assert "broken.jpg" in result.stderr and "contact sheet of 2 images" in result.stderr
    rows = json.loads(result.stdout)
    assert [sorted(row) for row in rows] == [["confidence", "label", "path", "probabilities", "unknown_score"]] * 2
    assert [row["path"] for row in rows] == [str(photos / "Cats é.jpg"), str(photos / "Dogs é.jpg")]
    for row in rows:
        probabilities = row["probabilities"]
        assert list(probabilities) == ["Cats", "Dogs"] and sum(probabilities.values()) == pytest.approx(1, abs=2e-4)
        assert row["label"] == max(probabilities, key=probabilities.get)
        assert row["confidence"] == pytest.approx(max(probabilities.values()), abs=1e-4) and row["confidence"] >= 0.5
    with Image.open(tmp_path / "sheet.png") as picture:
        assert picture.format == "PNG" and picture.height == sheet.HEADER + CELL + sheet.CAPTION + 2 * sheet.GAP
        assert picture.width == max(520, sheet.GAP + 2 * (CELL + sheet.GAP))


def test_predict_cli_refuses_a_bad_sheet_name_at_once(tmp_path, run, model_file):
    make_photo(tmp_path / "a.jpg", COLOURS["Cats"])
    result = run("predict.py", tmp_path / "a.jpg", "--model", model_file, "--sheet", tmp_path / "sheet.gif")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --sheet") and result.stderr.count("\n") == 1
