"""serve.py: the JSON API and the page in-process (FastAPI's TestClient), SIGTERM on the script as a
user starts it, and the page in a real browser (Debian's headless Chromium through Selenium, skipped
where there is none). The model is a logistic one trained for a second on plain colours: blue
photos are Cats, orange ones Dogs."""
import asyncio
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import COLOURS, PROJECT, skip_without_chromium

from classifier import artifacts
from classifier.artifacts import ModelInfo
from classifier.prediction import predict_files
from classifier.server import Batcher, Limits, create_app

from fastapi.testclient import TestClient  # requirements.txt installs it: a broken install fails, not skips

SIZE = 32
CLASSES = ["Cats", "Dogs"]
BLUE, ORANGE = COLOURS["Cats"], COLOURS["Dogs"]
# Small limits, so that each refusal is quick to provoke.
LIMITS = Limits(max_file_bytes=100_000, max_pixels=200 * 200, max_files=4)
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")  # Debian's


def photo(colour, size=(60, 40), seed=0, fmt="JPEG", noise=12):
    """The bytes of a photo of one colour, lit from above, with some noise, as a phone would upload it."""
    rng = np.random.default_rng(seed)
    light = np.linspace(1.25, 0.75, size[1])[:, None, None] if noise else 1
    pixels = np.clip(rng.normal(np.multiply(colour, light), noise, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """(model, info, model.h5): a logistic model whose weights say Dogs where a photo is more red than
    blue, else Cats; saved and loaded back as train_CNN.py and serve.py do (set, not trained: no fit to wait for)."""
    import keras

    from classifier.model import make_model
    network = make_model("logistic", SIZE, len(CLASSES))
    red_minus_blue = np.tile([1.0, 0.0, -1.0], SIZE * SIZE) * 0.002  # per (row, column, channel), as Flatten orders them
    network.layers[-1].set_weights([np.stack([-red_minus_blue, red_minus_blue], axis=1), np.zeros(2)])
    folder = tmp_path_factory.mktemp("served")
    info = ModelInfo(CLASSES, SIZE, model="logistic", keras_version=keras.__version__)
    artifacts.save(network, info, folder / "model.h5", folder / "weights.h5")
    model, info = artifacts.load(folder / "model.h5")
    return model, info, folder / "model.h5"


# serve.py's limits, far below the defaults (20 MB, 50 megapixels, 32 files): each refusal shows its flag reached the server.
SCRIPT_LIMITS = ("--max-upload-mb", "0.1", "--max-megapixels", "0.25", "--max-files", "3")


@pytest.fixture(scope="module")
def serve_py(classifier, tmp_path_factory):
    """`python serve.py --port 0 --model ... SCRIPT_LIMITS` as a user starts it: (process, its log file)."""
    log = tmp_path_factory.mktemp("serve_py") / "log.txt"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, str(PROJECT / "serve.py"), "--port", "0", "--model", str(classifier[2]), *SCRIPT_LIMITS],
                                   stdout=output, stderr=subprocess.STDOUT)
    yield process, log
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def client(classifier, serve_py):
    """The app in-process. (It asks for serve_py only to start the script early: its start-up, a
    TensorFlow import of several seconds, then overlaps the in-process tests.)"""
    model, info, path = classifier
    with TestClient(create_app(model, info, LIMITS, model_file=path)) as client:
        yield client


def post(client, *files):
    """POST /predict with one multipart field `file` per (filename, bytes)."""
    return client.post("/predict", files=[("file", (name, data, "application/octet-stream")) for name, data in files])


class Sources(HTMLParser):
    """Every URL the page would load or link: src, href, and url(...) in its style."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href", "srcset", "data", "poster", "action") and value]

    def handle_data(self, data):
        self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", data) + re.findall(r"@import\s+['\"]([^'\"]+)", data)


def test_the_page_works_offline(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'type="file"' in page and "logistic: Cats, Dogs" in page
    sources = Sources()
    sources.feed(page)
    assert sources.urls == []  # no stylesheet, script, font or picture from anywhere, not even this server
    assert not re.search(r"https?:|//[\w.-]+\.\w", page)  # nor a CDN named in the script
    assert 'fetch("predict"' in page  # the one request it makes: relative, so it works behind a path prefix too


def test_the_page_never_rounds_an_unsure_confidence_up_to_its_threshold(client):
    """The page's percent(), run by Node.js as the browser would: 0.6996 under 70 % reads 69.9 %, as on predict.py's sheet."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js here to run the page's script")
    page = client.get("/").text
    script = re.search(r"const CLASSES = .*?;", page).group(0) + re.search(r"function percent\(.*?\n}", page, flags=re.DOTALL).group(0)
    shown = subprocess.run([node, "-e", script + "console.log([0.6996, 0.697, 0.7, 0.99996, 0.12345].map(percent).join(' '))"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert shown == ["69.9%", "69.7%", "70.0%", "100.0%", "12.3%"]  # the page's threshold: 70 % (no --unsure-below)


def test_health_names_the_model(client, classifier):
    response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["classes"] == CLASSES and health["image_size"] == SIZE
    assert health["model"] == "logistic" and health["model_file"] == str(classifier[2])


def test_a_photo_gets_the_label_predict_py_gives_it(client, classifier, tmp_path):
    data = photo(BLUE, size=(200, 150))
    response = post(client, ("blue sky é.jpg", data))
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert prediction["filename"] == "blue sky é.jpg" and prediction["label"] == "Cats" and prediction["confidence"] > 0.5
    model, info, _ = classifier
    (tmp_path / "same.jpg").write_bytes(data)
    (expected,) = predict_files(model, info, [tmp_path / "same.jpg"], batch_size=32)
    assert prediction["confidence"] == pytest.approx(expected.confidence, abs=1e-4)
    assert prediction["probabilities"] == pytest.approx(dict(zip(CLASSES, expected.probabilities)), abs=1e-4)


def test_several_photos_in_one_request_are_answered_in_their_order(client):
    response = post(client, ("a.jpg", photo(ORANGE, seed=1)), ("b.png", photo(BLUE, seed=2, fmt="PNG")),
                     ("c.webp", photo(ORANGE, seed=3, fmt="WEBP")))
    assert response.status_code == 200, response.text
    assert [(row["filename"], row["label"]) for row in response.json()["predictions"]] == \
        [("a.jpg", "Dogs"), ("b.png", "Cats"), ("c.webp", "Dogs")]


def test_an_upload_is_labelled_from_its_bytes_without_a_temporary_file(client, monkeypatch):
    """The photo reader takes bytes as it takes a path: an upload is never written to disk to be read back."""
    import tempfile

    def no_temporary_files(*args, **kwargs):
        raise AssertionError("the upload was written to a temporary file")
    for name in ("NamedTemporaryFile", "mkstemp", "TemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_temporary_files)
    response = post(client, ("big.png", photo(BLUE, size=(120, 80), fmt="PNG")), ("small.jpg", photo(ORANGE, seed=4)))
    assert [row["label"] for row in response.json()["predictions"]] == ["Cats", "Dogs"], response.text


@pytest.mark.parametrize("name, data, status, reason", [
    ("notes.txt", b"these are my notes, not a photo", 415, "not an image"),
    ("empty.jpg", b"", 400, "empty file (0 bytes)"),
    ("big.jpg", photo(ORANGE)[:2] + bytes(LIMITS.max_file_bytes), 413,
     "100,002 bytes, over this server's limit of 100,000 bytes per photo"),
    ("wide.png", photo(ORANGE, size=(401, 100), fmt="PNG", noise=0), 413,
     "401x100 is 0.0401 megapixels, over this server's limit of 0.04"),
    ("cut.jpg", photo(ORANGE, size=(300, 200))[:600], 415, "damaged or incomplete image"),
])
def test_a_bad_upload_is_a_4xx_naming_the_file_and_the_server_stays_up(client, name, data, status, reason):
    response = post(client, (name, data))
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"]
    assert response.json()["error"].startswith(f"{name}: ") and reason in response.json()["error"]
    assert client.get("/health").status_code == 200
    assert post(client, ("after.jpg", photo(BLUE))).json()["predictions"][0]["label"] == "Cats"


@pytest.mark.parametrize("name, data, reason", [
    ("notes.txt", b"these are my notes, not a photo", "not an image"),
    ("empty.jpg", b"", "empty file (0 bytes)"),
    ("wide.png", photo(ORANGE, size=(401, 100), fmt="PNG", noise=0), "401x100 is 0.0401 megapixels"),
    ("cut.jpg", photo(ORANGE, size=(300, 200))[:600], "damaged or incomplete image"),
])
def test_a_bad_upload_among_good_ones_gets_its_own_entry_and_the_good_ones_are_labelled(client, name, data, reason):
    response = post(client, ("good.jpg", photo(BLUE)), (name, data), ("also good.jpg", photo(ORANGE)))
    assert response.status_code == 200, response.text
    good, bad, also = response.json()["predictions"]
    assert (good["filename"], good["label"], also["filename"], also["label"]) == ("good.jpg", "Cats", "also good.jpg", "Dogs")
    assert list(bad) == ["filename", "error"] and bad["filename"] == name
    assert bad["error"].startswith(f"{name}: ") and reason in bad["error"]


def test_a_request_without_photos_or_with_too_many_is_refused(client):
    for response, words in ((client.post("/predict", data={"photo": "x"}), "in the field `file`"),
                            (client.post("/predict"), "in the field `file`"),
                            (post(client, *[(f"{index}.jpg", photo(BLUE)) for index in range(5)]), "Too many files")):
        assert response.status_code == 400 and words in response.json()["error"]
    response = client.post("/predict", content=bytes(LIMITS.max_request_bytes + 1),
                           headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413 and "per request" in response.json()["error"]
    assert client.get("/nowhere").json() == {"error": "Not Found"}


def test_clients_at_once_are_all_answered_and_share_model_calls(classifier):
    model, info, _ = classifier
    photos = [(f"{index}.jpg", photo(ORANGE if index % 2 else BLUE, seed=index)) for index in range(12)]
    # A long batch wait (250 ms), so that requests sent together surely meet in the queue on a busy machine.
    with TestClient(create_app(model, info, batch_size=16, batch_wait=0.25)) as client, ThreadPoolExecutor(len(photos)) as pool:
        responses = list(pool.map(lambda upload: post(client, upload), photos))
        calls = client.get("/health").json()["model_calls"]
    assert [response.status_code for response in responses] == [200] * len(photos)
    assert [response.json()["predictions"][0]["label"] for response in responses] == ["Cats", "Dogs"] * 6
    assert calls <= len(photos) // 2  # micro-batching: requests that arrive together share a model call


class Recorder:
    """A stand-in model that notes the size of each batch it is called on."""

    def __init__(self):
        self.batches = []

    def predict_on_batch(self, images):
        self.batches.append(len(images))
        return images.mean(axis=(1, 2))[:, :2] / 255


def test_photos_queued_together_share_one_model_call_of_at_most_batch_size():
    async def burst(counts, batch_size):
        batcher = Batcher(Recorder(), batch_size=batch_size, batch_wait=0.01)
        batcher.start()
        try:
            images = [[np.full((4, 4, 3), 10 * index, np.uint8)] * count for index, count in enumerate(counts)]
            rows = await asyncio.gather(*(batcher.predict(request) for request in images))
        finally:
            batcher.stop()
        return batcher.model.batches, rows

    batches, rows = asyncio.run(burst([1] * 8, batch_size=32))
    assert batches == [8] and [row[0][0] for row in rows] == pytest.approx([10 * index / 255 for index in range(8)])
    batches, rows = asyncio.run(burst([10, 20, 10], batch_size=16))
    assert batches == [16, 16, 8] and [len(row) for row in rows] == [10, 20, 10]


def served_url(serve_py):
    """The URL serve.py printed, once it is listening."""
    process, log = serve_py
    deadline, url = time.monotonic() + 120, None
    while url is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        url = next(iter(re.findall(r"Serving on (http://127\.0\.0\.1:\d+/)", log.read_text())), None)
    assert url, log.read_text()
    return url


def test_the_limits_given_to_serve_py_are_the_servers(serve_py):
    """--max-upload-mb 0.1, --max-megapixels 0.25, --max-files 3: each is refused just above, answered just below."""
    import httpx

    url = served_url(serve_py) + "predict"

    def send(*files):
        return httpx.post(url, files=[("file", (name, data, "application/octet-stream")) for name, data in files], timeout=60)
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(noise, "PNG")
    heavy = noise.getvalue()  # 0.04 megapixels, but 120 kB of incompressible noise: over 0.1 MB (104,858 bytes)
    assert 0.1 * 2**20 < len(heavy) < 20 * 2**20
    for files, status, words in (
            ([("heavy.png", heavy)], 413,
             f"heavy.png: {len(heavy):,} bytes, over this server's limit of 104,857 bytes per photo (serve.py --max-upload-mb)"),
            ([("wide.jpg", photo(BLUE, size=(600, 420)))], 413,  # 0.252 megapixels, a few kB
             "wide.jpg: 600x420 is 0.252 megapixels, over this server's limit of 0.25 (serve.py --max-megapixels)"),
            ([(f"{index}.jpg", photo(BLUE, seed=index)) for index in range(4)], 400, "Too many files")):
        response = send(*files)
        assert response.status_code == status and words in response.json()["error"], (response.status_code, response.text)
    answered = send(("wide.jpg", photo(ORANGE, size=(600, 416))), *[(f"{index}.jpg", photo(BLUE, seed=index)) for index in range(2)])
    assert answered.status_code == 200, answered.text  # 0.2496 megapixels and 3 files: at the limits, not over
    assert [row["label"] for row in answered.json()["predictions"]] == ["Dogs", "Cats", "Cats"]


def test_sigterm_stops_the_server_in_seconds_with_exit_code_0(serve_py):
    import httpx

    process, log = serve_py
    url = served_url(serve_py)
    assert httpx.get(url + "health", timeout=10).json()["classes"] == CLASSES
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0 and time.monotonic() - started < 5, log.read_text()
    assert "Application shutdown complete" in log.read_text()


@pytest.fixture
def live_server(classifier):
    """The app under uvicorn in a thread of this process, on a free port of 127.0.0.1, as serve.py runs it."""
    import uvicorn

    model, info, path = classifier
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(model, info, model_file=path), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_a_photo_picked_on_the_page_is_shown_with_its_label(live_server, tmp_path):
    """MAKE_DOCS=1 also copies the screenshot to docs/serve_page.png, the README's picture of the page."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        skip_without_chromium(f"no {CHROMIUM} and {CHROMEDRIVER} here (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    uploads = {"blue.jpg": photo(BLUE, size=(400, 300), seed=5), "orange.png": photo(ORANGE, size=(300, 300), seed=6, fmt="PNG")}
    for name, data in uploads.items():
        (tmp_path / name).write_bytes(data)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--window-size=900,560",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    try:
        driver.get(live_server)
        driver.find_element(By.ID, "picker").send_keys("\n".join(str(tmp_path / name) for name in uploads))
        WebDriverWait(driver, 30).until(lambda _: len(driver.find_elements(By.CSS_SELECTOR, "figure[data-label]")) == 2)
        shown = {figure.find_element(By.CLASS_NAME, "name").text: figure.find_element(By.CLASS_NAME, "label").text
                 for figure in driver.find_elements(By.TAG_NAME, "figure")}
        assert shown.keys() == uploads.keys()
        assert re.fullmatch(r"Cats \d+\.\d%", shown["blue.jpg"]) and re.fullmatch(r"Dogs \d+\.\d%", shown["orange.png"]), shown
        assert driver.find_elements(By.CLASS_NAME, "error") == []
        chrome = driver.execute_script("return window.outerHeight - window.innerHeight")  # the whole page in the picture
        driver.set_window_size(900, driver.execute_script("return document.documentElement.scrollHeight") + chrome)
        driver.save_screenshot(str(tmp_path / "serve_page.png"))
    finally:
        driver.quit()
    if os.environ.get("MAKE_DOCS") == "1":
        shutil.copy(tmp_path / "serve_page.png", PROJECT / "docs" / "serve_page.png")
