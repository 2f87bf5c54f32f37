"""The contact sheet (predict.py --sheet) and the JSON output (predict.py --json)."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import COLOURS, make_photo, run_script

from classifier import sheet
from classifier.config import UsageError


def cell_origin(index, columns=sheet.COLUMNS):
    cell_w, cell_h = sheet.THUMB + 2 * sheet.FRAME, sheet.THUMB + 2 * sheet.FRAME + sheet.CAPTION
    return sheet.GAP + (index % columns) * (cell_w + sheet.GAP), sheet.HEADER + (index // columns) * (cell_h + sheet.GAP)


def test_grid_of_thumbnails_with_doubtful_ones_framed(tmp_path):
    names = ["Cats", "Dogs", "Dogs", "Cats", "Dogs", "Cats", "Cats", "Dogs"]
    confidences = [0.99, 0.55, 0.91, 0.69, 0.7, 0.8, 0.6, 0.95]
    rows = []
    for index, (name, confidence) in enumerate(zip(names, confidences)):
        photo = make_photo(tmp_path / f"{index}.png", COLOURS[name], size=(60 + 30 * index, 50), seed=index, format="PNG")
        rows.append((str(photo), name, f"{confidence:.4f}"))
    assert sheet.make_sheet(rows, tmp_path / "sheet.png") == 8

    picture = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB")).astype(int)
    cell_w = sheet.THUMB + 2 * sheet.FRAME
    assert picture.shape[1] == sheet.GAP + 6 * (cell_w + sheet.GAP)  # 6 columns...
    assert picture.shape[0] == sheet.HEADER + 2 * (cell_w + sheet.CAPTION + sheet.GAP) + sheet.GAP  # ...2 rows
    for index, (name, confidence) in enumerate(zip(names, confidences)):
        x, y = cell_origin(index)
        middle = picture[y + cell_w // 2 - 10:y + cell_w // 2 + 10, x + cell_w // 2 - 10:x + cell_w // 2 + 10]
        assert np.abs(middle.mean(axis=(0, 1)) - COLOURS[name]).max() < 25, index  # the right photo, in order
        frame = tuple(picture[y + cell_w // 2, x + 1])  # the outer edge of the frame, left side
        assert (frame == sheet.DOUBT) == (confidence < sheet.LOW_CONFIDENCE), index


def test_sheet_holds_at_most_max_images(tmp_path, monkeypatch):
    monkeypatch.setattr(sheet, "MAX_IMAGES", 3)
    photo = make_photo(tmp_path / "a.jpg", COLOURS["Dogs"])
    assert sheet.make_sheet([(str(photo), "Dogs", "0.9")] * 5, tmp_path / "sheet.png") == 3


def test_sheet_path_is_checked_before_anything_runs(tmp_path):
    with pytest.raises(UsageError, match="name the contact sheet .png or .jpg"):
        sheet.check_sheet_path(tmp_path / "sheet.txt")
    with pytest.raises(UsageError, match="not found"):
        sheet.check_sheet_path(tmp_path / "missing" / "sheet.png")
    sheet.check_sheet_path(tmp_path / "sheet.JPG")


def test_predict_cli_json_and_sheet(tmp_path, trained):
    output, _ = trained
    photos = tmp_path / "photos"
    for index, (name, colour) in enumerate(COLOURS.items()):
        make_photo(photos / f"{name} é.jpg", colour, seed=200 + index)
    (photos / "broken.jpg").write_text("not a photo")
    result = run_script("predict.py", photos, "--model", output / "model.h5", "--weights", output / "weights.h5",
                        "--json", "--sheet", tmp_path / "sheet.png")
    assert result.returncode == 1  # the broken file, named on stderr as without --json
    assert "broken.jpg" in result.stderr and "contact sheet of 2 images" in result.stderr
    rows = json.loads(result.stdout)
    assert [sorted(row) for row in rows] == [["confidence", "label", "path"]] * 2
    assert [row["path"] for row in rows] == [str(photos / "Cats é.jpg"), str(photos / "Dogs é.jpg")]
    assert all(row["label"] in COLOURS and 0.5 <= row["confidence"] <= 1 for row in rows)
    with Image.open(tmp_path / "sheet.png") as picture:
        assert picture.format == "PNG" and picture.height == sheet.HEADER + sheet.THUMB + 2 * sheet.FRAME + sheet.CAPTION + 2 * sheet.GAP


def test_predict_cli_refuses_a_bad_sheet_name_at_once(tmp_path, trained):
    output, _ = trained
    make_photo(tmp_path / "a.jpg", COLOURS["Cats"])
    result = run_script("predict.py", tmp_path / "a.jpg", "--model", output / "model.h5", "--weights", output / "weights.h5",
                        "--sheet", tmp_path / "sheet.gif")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --sheet") and result.stderr.count("\n") == 1
