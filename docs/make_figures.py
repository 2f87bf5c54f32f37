"""Make the README's pictures from generated images, with the two commands as a user runs them.

    python docs/make_figures.py        # writes docs/contact_sheet.png, learning_curves.png, heatmaps.png, report.png

No photo is involved: Pillow draws cartoon cat faces (pointed ears, whiskers) and dog faces
(floppy ears, big nose) in the same random fur colours, so the network must learn shapes. A
short `train_CNN.py --arch classic` run on them gives the learning curves and the run's report
(reports/index.html, photographed by headless Chromium where /usr/bin/chromium exists; a few
dog faces are filed under Cats so that its suspects table has something to show), and
`predict.py --sheet` on a fresh set the contact sheet, with `--heatmaps` the heatmap sheet.
A few minutes on a laptop CPU.
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
                draw.line((cx + side * r * 0.2, cy + r * dy, cx + side * r * 1.1, cy + r * (dy + rng.uniform(-0.15, 0.15))), fill=(30, 30, 30), width=1)
    else:
        draw.ellipse((cx - r * 0.2, cy + r * 0.1, cx + r * 0.2, cy + r * 0.38), fill=(15, 15, 15))
        if rng.random() < 0.5:
            draw.ellipse((cx - r * 0.12, cy + r * 0.5, cx + r * 0.12, cy + r * 0.85), fill=(220, 90, 110))
    image = image.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BILINEAR, fillcolor=background)
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))


def make_folder(root, counts, first_seed=0):
    for split, count in counts.items():
        for kind, folder in (("cat", "Cats"), ("dog", "Dogs")):
            target = Path(root, split, folder)
            target.mkdir(parents=True, exist_ok=True)
            for index in range(first_seed, first_seed + count):
                cartoon(kind, index).save(target / f"{kind}.{index}.jpg", quality=90)


def mislabel(folder, count):
    """File the first `count` dog faces of Training_Set under Cats, as a careless labeller might."""
    for index in range(count):
        shutil.move(Path(folder, "Training_Set", "Dogs", f"dog.{index}.jpg"), Path(folder, "Training_Set", "Cats", f"dog.{index}.jpg"))


def screenshot(page, png_path, width=1100, height=2600):
    """The top of an HTML page as headless Chromium draws it; skipped without Chromium."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        print(f"no Chromium here: {png_path} not made (apt-get install chromium)")
        return
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                        "--disable-background-networking", "--disable-component-update", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png_path}",
                        Path(page).resolve().as_uri()], check=True, capture_output=True)


def run(script, *args):
    print("$ python", script, *map(str, args), flush=True)
    subprocess.run([sys.executable, str(PROJECT / script), *map(str, args)], check=True)


def main():
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        make_folder(work / "data", {"Training_Set": 240, "Test_Set": 60})
        mislabel(work / "data", 4)
        run("train_CNN.py", "--data", work / "data", "--output", work / "run", "--arch", "classic",
            "--image-size", 64, "--epochs", 10, "--batch-size", 32)
        shutil.copyfile(work / "run" / "reports" / "learning_curves.png", DOCS / "learning_curves.png")
        screenshot(work / "run" / "reports" / "index.html", DOCS / "report.png")

        make_folder(work / "new", {"Predict": 9}, first_seed=10_000)  # faces the model has never seen
        photos = sorted((work / "new" / "Predict").rglob("*.jpg"), key=lambda path: int(path.stem.split(".")[1]))
        run("predict.py", *photos, "--model", work / "run" / "model.h5", "--weights", work / "run" / "weights.h5",
            "--sheet", DOCS / "contact_sheet.png")
        run("predict.py", *photos[:6], "--model", work / "run" / "model.h5", "--heatmaps", work / "heatmaps",
            "--sheet", DOCS / "heatmaps.png")


if __name__ == "__main__":
    main()
