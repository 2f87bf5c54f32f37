"""The shipped model.h5/weights.h5: they load in a fresh process, and phone-sized photos of any
shape are labelled as well as the 180x180 ones they were trained on."""
import random

import pytest
from PIL import Image

from conftest import PROJECT, SHARED_DATASET, run_script

MODEL, WEIGHTS = PROJECT / "model.h5", PROJECT / "weights.h5"
pytestmark = pytest.mark.skipif(not MODEL.is_file() or not WEIGHTS.is_file(), reason="no shipped model.h5/weights.h5")


def labels(result):
    return {line.split("\t")[0].rsplit("/", 1)[-1]: line.split("\t")[1] for line in result.stdout.splitlines()}


def test_shipped_files_label_generated_images(tmp_path):
    Image.new("RGB", (500, 375), (120, 90, 60)).save(tmp_path / "plain.jpg")
    result = run_script("predict.py", tmp_path)  # the defaults: model.h5 and weights.h5 beside the script
    assert result.returncode == 0, result.stderr
    assert list(labels(result).values())[0] in ("Cats", "Dogs")


@pytest.mark.skipif(not SHARED_DATASET.is_dir(), reason=f"{SHARED_DATASET} not found")
def test_phone_sized_photos_are_labelled_like_the_originals(tmp_path):
    rng = random.Random(0)
    originals, phone = tmp_path / "originals", tmp_path / "phone"
    for folder in (originals, phone):
        folder.mkdir()
    truth = {}
    for name in ("Cats", "Dogs"):
        source = SHARED_DATASET / "Test_Set" / name
        for index, path in enumerate(rng.sample(sorted(source.iterdir()), 30)):
            photo = Image.open(path)
            photo.save(originals / path.name)
            # Alternate a 12-megapixel 4:3 landscape and a 3:4 portrait, as phones take them.
            size = (4000, 3000) if index % 2 else (2268, 3024)
            photo.resize(size, Image.Resampling.BICUBIC).save(phone / path.name, quality=92)
            truth[path.name] = name
    small, large = labels(run_script("predict.py", originals)), labels(run_script("predict.py", phone))
    assert len(small) == len(large) == len(truth) == 60
    accuracy_small = sum(small[name] == label for name, label in truth.items()) / len(truth)
    accuracy_large = sum(large[name] == label for name, label in truth.items()) / len(truth)
    agreement = sum(small[name] == large[name] for name in truth) / len(truth)
    assert agreement >= 0.95, (agreement, accuracy_small, accuracy_large)
    assert accuracy_large >= accuracy_small - 0.03, (accuracy_small, accuracy_large)
