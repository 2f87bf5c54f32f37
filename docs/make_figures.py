"""Make the README's pictures from generated images, with the commands as a user runs them.

    python docs/make_figures.py        # writes docs/contact_sheet.png, learning_curves.png, heatmaps.png, report.png

No photo is involved: Pillow draws cartoon cat faces (pointed ears, whiskers) and dog faces
(floppy ears, big nose) in the same random fur colours, so the network must learn shapes. A
short `train_CNN.py --arch classic` run on them gives the learning curves and the run's report
(reports/index.html from its Mistakes section down, photographed by headless Chromium through
Selenium where /usr/bin/chromium and chromedriver exist; a few dog faces are filed under Cats so
that its suspects table has something to show), and `predict.py --sheet` on fresh faces the
contact sheet. The heatmaps come from a two-epoch run of the default, pretrained model:
Grad-CAM on its last feature map lands on the eyes, noses and ears, where the small classic
model, which knows a cat mostly by the absence of floppy ears, lights up the background.
About five minutes on a laptop CPU.
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

DOCS = Path(__file__).resolve().parent
PROJECT = DOCS.parent
FIRST_SEED = {"Training_Set": 0, "Test_Set": 5_000, "Predict": 10_000}  # no face in two sets: test copies of training faces flatter the score
MAX_BYTES = 400_000  # per picture: the README stays light
FUR = [(230, 150, 60), (90, 70, 60), (200, 200, 195), (40, 40, 45), (240, 225, 190), (160, 110, 70)]


def cartoon(kind, seed, size=128):
    """A cat or dog face on a random background, at a random place, scale and tilt."""
    rng = random.Random(f"{kind}-{seed}")
    background = tuple(rng.randint(120, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    for _ in range(6):  # some clutter behind the face
        x, y, r = rng.randint(0, size), rng.randint(0, size), rng.randint(5, 25)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(max(0, c - rng.randint(10, 50)) for c in background))
    fur = rng.choice(FUR)
    darker = tuple(max(0, c - 50) for c in fur)
    cx, cy, r = size // 2 + rng.randint(-12, 12), size // 2 + rng.randint(-8, 12), rng.randint(28, 38)
    if kind == "cat":  # pointed ears above the head
        for side in (-1, 1):
            draw.polygon([(cx + side * r * 0.9, cy - r * 0.3), (cx + side * r * 0.8, cy - r * 1.45), (cx + side * r * 0.15, cy - r * 0.85)], fill=fur)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fur)
    if kind == "dog":  # floppy ears down the sides, a muzzle
        for side in (-1, 1):
            draw.ellipse((cx + side * r * 0.75 - r * 0.35, cy - r * 0.8, cx + side * r * 0.75 + r * 0.35, cy + r * 0.6), fill=darker)
        draw.ellipse((cx - r * 0.45, cy + r * 0.05, cx + r * 0.45, cy + r * 0.75), fill=tuple(min(255, c + 40) for c in fur))
    eye_y, eye_dx = cy - r * 0.2, r * 0.38
    for side in (-1, 1):
        ex = cx + side * eye_dx
        if kind == "cat":  # almond eyes with slit pupils
            draw.ellipse((ex - r * 0.18, eye_y - r * 0.12, ex + r * 0.18, eye_y + r * 0.12), fill=(170, 200, 60))
            draw.ellipse((ex - r * 0.04, eye_y - r * 0.12, ex + r * 0.04, eye_y + r * 0.12), fill=(0, 0, 0))
        else:
            draw.ellipse((ex - r * 0.12, eye_y - r * 0.12, ex + r * 0.12, eye_y + r * 0.12), fill=(20, 20, 20))
    if kind == "cat":
        draw.polygon([(cx - r * 0.1, cy + r * 0.15), (cx + r * 0.1, cy + r * 0.15), (cx, cy + r * 0.28)], fill=(230, 120, 140))
        for side in (-1, 1):
            for dy in (0.25, 0.38):
                end = (cx + side * r * 1.1, cy + r * (dy + rng.uniform(-0.15, 0.15)))
                draw.line((cx + side * r * 0.2, cy + r * dy, *end), fill=(30, 30, 30), width=1)
    else:
        draw.ellipse((cx - r * 0.2, cy + r * 0.1, cx + r * 0.2, cy + r * 0.38), fill=(15, 15, 15))
        if rng.random() < 0.5:
            draw.ellipse((cx - r * 0.12, cy + r * 0.5, cx + r * 0.12, cy + r * 0.85), fill=(220, 90, 110))
    image = image.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BILINEAR, fillcolor=background)
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))


def make_folder(root, counts):
    """count cat and count dog faces in root/<split>/Cats and Dogs, for each split: count of counts."""
    for split, count in counts.items():
        for kind, folder in (("cat", "Cats"), ("dog", "Dogs")):
            target = Path(root, split, folder)
            target.mkdir(parents=True, exist_ok=True)
            for index in range(FIRST_SEED[split], FIRST_SEED[split] + count):
                cartoon(kind, index).save(target / f"{kind}.{index}.jpg", quality=90)


def mislabel(folder, count):
    """File the first `count` dog faces of Training_Set under Cats, as a careless labeller might."""
    for index in range(count):
        shutil.move(Path(folder, "Training_Set", "Dogs", f"dog.{index}.jpg"), Path(folder, "Training_Set", "Cats", f"dog.{index}.jpg"))


CHROMIUM = "/usr/bin/chromium"  # Debian's; with its chromedriver, as the browser test uses them


def screenshot(page, png_path, section, width=1100, max_height=2600):
    """The HTML page from its #section to its end (at most max_height pixels), as headless Chromium draws it (Selenium + chromedriver);
    skipped without them. (chromium --screenshot cannot scroll: a page#section URL gives a blank picture.)"""
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
    if webdriver is None or not (os.access(CHROMIUM, os.X_OK) and shutil.which("chromedriver")):
        print(f"no Selenium, {CHROMIUM} and chromedriver here: {png_path} not made (apt-get install chromium chromium-driver)")
        return
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
                     f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
        try:
            driver.set_window_size(width, 1000)  # the width first: it decides where lines wrap, so the page's height
            driver.get(Path(page).resolve().as_uri())
            top, bottom, chrome = driver.execute_script(  # the page from the section's heading to its end
                "return [document.getElementById(arguments[0]).getBoundingClientRect().top + window.scrollY - 12,"
                " document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];", section)
            driver.set_window_size(width, min(bottom - top, max_height) + chrome)
            driver.execute_script("window.scrollTo(0, arguments[0])", top)
            driver.save_screenshot(str(png_path))
        finally:
            driver.quit()
    print(f"{png_path}: {page} from #{section} down")


def shrink(png_path, limit=MAX_BYTES):
    """Re-save a picture of more than limit bytes in 256 colours (k-means refined, dithered): a quarter of the size, hardly a difference."""
    if png_path.is_file() and png_path.stat().st_size > limit:
        with Image.open(png_path) as picture:
            picture.convert("RGB").quantize(256, kmeans=2, dither=Image.Dither.FLOYDSTEINBERG).save(png_path, optimize=True)


def run(work, script, *args):
    """Run a script in the folder work, so that the pictures show short paths (data/Training_Set/...)."""
    print("$ python", script, *map(str, args), flush=True)
    subprocess.run([sys.executable, str(PROJECT / script), *map(str, args)], cwd=work, check=True)


def main():
    with tempfile.TemporaryDirectory() as work:
        make_folder(Path(work, "data"), {"Training_Set": 240, "Test_Set": 60})
        mislabel(Path(work, "data"), 4)
        run(work, "train_CNN.py", "--data", "data", "--output", "classic", "--arch", "classic",
            "--image-size", 64, "--epochs", 10, "--batch-size", 32)
        shutil.copyfile(Path(work, "classic", "reports", "learning_curves.png"), DOCS / "learning_curves.png")
        screenshot(Path(work, "classic", "reports", "index.html"), DOCS / "report.png", section="mistakes")

        make_folder(Path(work, "new"), {"Predict": 9})  # faces no model has seen
        photos = sorted(Path(work).glob("new/Predict/*/*.jpg"), key=lambda path: int(path.stem.split(".")[1]))
        photos = [path.relative_to(work) for path in photos]
        run(work, "predict.py", *photos, "--model", "classic/model.h5", "--sheet", DOCS / "contact_sheet.png")

        make_folder(Path(work, "small"), {"Training_Set": 80, "Test_Set": 20})
        run(work, "train_CNN.py", "--data", "small", "--output", "pretrained", "--epochs", 2)
        run(work, "predict.py", *photos[:6], "--model", "pretrained/model.h5", "--heatmaps", "heatmaps",
            "--sheet", DOCS / "heatmaps.png")
    for name in ("learning_curves.png", "report.png", "contact_sheet.png", "heatmaps.png"):
        shrink(DOCS / name)
        print(f"{DOCS / name}: {(DOCS / name).stat().st_size // 1000} KB")


if __name__ == "__main__":
    main()
