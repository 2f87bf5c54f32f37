"""predict.py --tta and --unsure-below, and the review every training run leaves in OUTPUT/reports/
(classifier/reports/): mistakes.png, suspects.csv, unsure.png and index.html, opened in a real browser."""
import csv
import json
import os
import re
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import COLOURS, make_dataset, make_photo, skip_without_chromium

SIZE = 32
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A logistic model with random weights, saved as train_CNN.py saves one: its confidences vary."""
    import keras

    from classifier import artifacts
    from classifier.model import make_model
    keras.utils.set_random_seed(1)
    folder = tmp_path_factory.mktemp("untrained")
    artifacts.save(make_model("logistic", SIZE, 2), artifacts.ModelInfo(["Cats", "Dogs"], SIZE, model="logistic"),
                   folder / "model.h5", folder / "weights.h5")
    return folder / "model.h5"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Eight PNG photos of different gradients and noise; b.png is a.png mirrored."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(5)
    ramp = np.linspace(0, 255, SIZE)[None, :, None] * np.ones((SIZE, 1, 3))
    a = np.clip(ramp + rng.normal(0, 40, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(folder / "a.png")
    Image.fromarray(a[:, ::-1]).save(folder / "b.png")
    for index in range(6):
        pixels = rng.uniform(0, 255, (SIZE, SIZE, 3)) * rng.uniform(0.2, 1, 3)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"photo{index}.png")
    return folder


def labels(run, *args):
    result = run("predict.py", *args, "--json")
    assert result.returncode == 0, result.stderr
    return {Path(row["path"]).name: row for row in json.loads(result.stdout)}


def test_with_tta_a_photo_and_its_mirror_image_get_the_same_prediction(run, untrained, photos):
    plain = labels(run, photos / "a.png", photos / "b.png", "--model", untrained)
    assert plain["a.png"]["probabilities"] != plain["b.png"]["probabilities"]  # the model alone is not mirror-blind
    averaged = labels(run, photos / "a.png", photos / "b.png", "--model", untrained, "--tta")
    assert averaged["a.png"]["probabilities"] == averaged["b.png"]["probabilities"]
    mean = (np.array(list(plain["a.png"]["probabilities"].values())) + list(plain["b.png"]["probabilities"].values())) / 2
    assert np.allclose(list(averaged["a.png"]["probabilities"].values()), mean, atol=2e-4)


def test_a_photo_below_the_confidence_asked_is_labelled_unsure_everywhere(run, untrained, photos, tmp_path):
    confidences = sorted(row["confidence"] for row in labels(run, photos, "--model", untrained).values())
    threshold = (confidences[3] + confidences[4]) / 2  # half the photos below it
    table = tmp_path / "labels.csv"
    lines = run("predict.py", photos, "--model", untrained, "--unsure-below", threshold, "--csv", table, "--sheet", tmp_path / "sheet.png")
    assert lines.returncode == 0, lines.stderr
    rows = [line.split("\t") for line in lines.stdout.splitlines()]
    with open(table, newline="") as file:
        csv_rows = list(csv.DictReader(file))
    json_rows = labels(run, photos, "--model", untrained, "--unsure-below", threshold).values()
    for found in (rows, [(row["path"], row["label"], row["confidence"]) for row in csv_rows],
                  [(row["path"], row["label"], row["confidence"]) for row in json_rows]):
        assert len(found) == 8
        for _, label, confidence in found:
            assert (label == "unsure") == (float(confidence) < threshold), (label, confidence, threshold)
        assert sum(label == "unsure" for _, label, _ in found) == 4
    assert (tmp_path / "sheet.png").exists()


def test_evaluate_honours_tta_and_says_what_unsure_below_buys(run, untrained, tmp_path):
    data = make_dataset(tmp_path, train_per_class=1, test_per_class=4)
    result = run("predict.py", "--evaluate", data / "Test_Set", "--model", untrained, "--tta", "--unsure-below", 0.5)
    assert result.returncode == 0, result.stderr
    assert "accuracy:" in result.stdout
    assert re.search(r"with --unsure-below 0.5: 100.00% of the images labelled \(0 unsure\)", result.stdout)


# --- The review of a training run ---------------------------------------------------------------

@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """OUTPUT/reports/ of a tiny in-process training run, with a mislabelled training photo (a cat in
    Dogs) and a mislabelled test photo (a dog in Cats): the suspect and the mistake to find. A photo
    of a colour between the two, in Cats, is a second, less sure suspect: the order has something to sort."""
    from classifier.config import RunConfig
    from classifier.training import train

    data = make_dataset(tmp_path_factory.mktemp("data"), train_per_class=10, test_per_class=4)
    cats = sorted((data / "Training_Set" / "Cats").iterdir())
    shutil.move(cats[0], data / "Training_Set" / "Dogs" / "really-a-cat.jpg")
    between = [round(0.45 * cat + 0.55 * dog) for cat, dog in zip(COLOURS["Cats"], COLOURS["Dogs"])]
    make_photo(data / "Training_Set" / "Cats" / "in-between.jpg", between, seed=77)
    dogs = sorted((data / "Test_Set" / "Dogs").iterdir())
    shutil.move(dogs[0], data / "Test_Set" / "Cats" / "really-a-dog.jpg")
    output = tmp_path_factory.mktemp("run")
    train(RunConfig(data=str(data), output=str(output), arch="logistic", image_size=SIZE, epochs=2, batch_size=8))
    return output / "reports"


def test_every_run_leaves_mistakes_suspects_an_unsure_curve_and_a_page(reports):
    for name in ("mistakes.png", "suspects.csv", "unsure.png", "index.html", "learning_curves.png", "confusion_matrix.png"):
        assert (reports / name).stat().st_size > 0, name
    with open(reports / "suspects.csv", newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    assert reader.fieldnames == ["path", "label", "predicted", "confidence"]
    confidences = [float(row["confidence"]) for row in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert all(row["label"] != row["predicted"] for row in rows)
    assert "| P | photos labelled | accuracy of those |" in (reports / "summary.md").read_text()
    with Image.open(reports / "mistakes.png") as sheet:
        assert sheet.size[0] > 0


class Sources(HTMLParser):
    """Every URL the page would load or link: src, href, and url(...) in its style."""

    def __init__(self):
        super().__init__()
        self.urls, self.images = [], 0

    def handle_starttag(self, tag, attrs):
        self.images += tag == "img"
        self.urls += [value for name, value in attrs if name in ("src", "href", "srcset", "data", "poster") and value]

    def handle_data(self, data):
        self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", data)


def test_the_page_uses_only_embedded_or_local_files(reports):
    page = (reports / "index.html").read_text(encoding="utf-8")
    sources = Sources()
    sources.feed(page)
    assert sources.images >= 4  # learning curves, confusion matrix, mistakes, unsure curve
    for url in sources.urls:
        assert url.startswith("data:") or ("://" not in url and not url.startswith("//") and (reports / url).exists()), url
    assert "<script" not in page.lower() and "<link" not in page.lower()
    for section in ("settings", "learning-curves", "confusion-matrix", "mistakes", "suspects", "unsure"):
        assert f'<h2 id="{section}">' in page, section  # index.html#mistakes: links and docs/make_figures.py's screenshot


def chromium_image_widths(page):
    """naturalWidth of every <img> of the page, as Debian's headless Chromium loads it (Selenium + chromedriver)."""
    from selenium import webdriver  # requirements.txt installs it; Chromium is the system's
    if not (os.access(CHROMIUM, os.X_OK) and shutil.which("chromedriver")):
        skip_without_chromium(f"no {CHROMIUM} and chromedriver here (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
        try:
            driver.get(Path(page).resolve().as_uri())
            driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => i.onload = i.onerror = r))).then(done);")
            return driver.execute_script("return [...document.images].map(image => image.naturalWidth);")
        finally:
            driver.quit()


def test_every_picture_of_the_page_loads_in_a_real_browser(reports):
    widths = chromium_image_widths(reports / "index.html")
    assert len(widths) >= 4 and all(width > 0 for width in widths), widths


def test_the_planted_mislabel_is_the_first_suspect_and_the_planted_mistake_is_drawn(reports):
    from classifier.sheet import CAPTION, FRAME, GAP, HEADER, LINE, PAPER, THUMB
    with open(reports / "suspects.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    # The cat in Dogs/ first (0.86 when written), then the in-between photo (0.79); no other training photo.
    assert [(Path(row["path"]).name, row["label"], row["predicted"]) for row in rows] == [
        ("really-a-cat.jpg", "Dogs", "Cats"), ("in-between.jpg", "Cats", "Dogs")], rows
    assert float(rows[0]["confidence"]) > float(rows[1]["confidence"]) > 0.5
    summary = (reports / "summary.md").read_text()
    # 7 of the 8 test photos are right: only the dog in Cats/ is a mistake (the colours are easy otherwise).
    assert "mistakes on Test_Set: 1 of 8," in summary, summary
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert "<strong>87.50%</strong> (7 of 8 photos)" in page
    # The page lists the mistake too: its path, its folder's class and the model's, in full.
    mistakes = re.search(r'<h2 id="mistakes">.*?<h2', page, flags=re.DOTALL).group(0)
    assert re.search(r"really-a-dog\.jpg</span></td><td[^>]*>Cats</td><td[^>]*>Dogs</td>", mistakes), mistakes[-600:]
    with Image.open(reports / "mistakes.png") as sheet:
        pixels = np.asarray(sheet.convert("RGB"), dtype=float)
    # One row of one thumbnail, under the header, captioned on two lines (the class the model chose, then
    # the photo's); the thumbnail is the photo, not the paper or the grey stand-in.
    assert pixels.shape[0] == HEADER + THUMB + 2 * FRAME + CAPTION + LINE + GAP + GAP, pixels.shape
    cell = pixels[HEADER + FRAME:HEADER + FRAME + THUMB, GAP + FRAME:GAP + FRAME + THUMB]
    assert np.abs(cell.mean(axis=(0, 1)) - PAPER).max() > 40 and np.abs(cell.mean(axis=(0, 1)) - 200).max() > 20, cell.mean(axis=(0, 1))
