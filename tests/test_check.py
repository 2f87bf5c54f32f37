"""train_CNN.py --check, and its short form at the start of every training run: photos per class,
unreadable files, photos shared by Training_Set and Test_Set, copies within a set, imbalance, tiny photos."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classifier.check import NEAR_BITS, near_pairs, quick_check
from classifier.data import Sample
from classifier.images import check_photo
from conftest import COLOURS, SHARED_DATASET, make_photo

IMAGE_SIZE = 32


def clean_dataset(root, train_per_class=6, test_per_class=3):
    """Every photo its own noise (conftest.make_dataset repeats the seeds of Training_Set in Test_Set)."""
    seed = 0
    for split, count in (("Training_Set", train_per_class), ("Test_Set", test_per_class)):
        for name, colour in COLOURS.items():
            for index in range(count):
                seed += 1
                make_photo(Path(root, split, name, f"{name.lower()}.{index}.jpg"), colour, size=(48, 40), seed=seed)
    return Path(root)


@pytest.fixture
def check(run):
    """run train_CNN.py --check on a folder: (exit code, report lines)."""
    def check(data, *extra):
        result = run("train_CNN.py", "--check", "--data", data, "--image-size", IMAGE_SIZE, *extra)
        return result.returncode, result.stdout.splitlines(), result.stderr
    return check


def finding(lines, start):
    [line] = [line for line in lines if line.startswith(start)]
    return line


def test_a_clean_dataset_passes_with_its_counts(tmp_path, check):
    code, lines, _ = check(clean_dataset(tmp_path / "data"))
    assert code == 0 and lines[-1] == "Result: nothing serious (exit 0)", lines
    assert lines[0].startswith(f"Checked 18 photos of {tmp_path / 'data'} in ")
    assert lines[2].split() == ["Cats", "6", "3"] and lines[3].split() == ["Dogs", "6", "3"]
    assert finding(lines, "ok: the classes are balanced")
    assert finding(lines, "ok: no exact copies shared") and finding(lines, "ok: no near copies shared")


def test_a_test_photo_copied_from_training_is_a_problem(tmp_path, check):
    data = clean_dataset(tmp_path / "data")
    shutil.copy(data / "Training_Set/Cats/cats.2.jpg", data / "Test_Set/Cats/copy.jpg")
    code, lines, _ = check(data)
    assert code == 1 and lines[-1] == "Result: 1 problem (exit 1)", lines
    line = finding(lines, "PROBLEM: 1 Test_Set photo has exact copies in Training_Set")
    assert lines[lines.index(line) + 1] == "  Test_Set/Cats/copy.jpg = Training_Set/Cats/cats.2.jpg"


def test_a_test_photo_resized_and_recompressed_from_training_is_a_near_copy(tmp_path, check):
    data = clean_dataset(tmp_path / "data")
    with Image.open(data / "Training_Set/Dogs/dogs.1.jpg") as image:
        image.resize((96, 80)).save(data / "Test_Set/Cats/bigger.png")  # another size, format and class
    code, lines, _ = check(data)
    assert code == 1, lines
    line = finding(lines, "PROBLEM: 1 Test_Set photo has near copies")
    assert lines[lines.index(line) + 1] == "  Test_Set/Cats/bigger.png = Training_Set/Dogs/dogs.1.jpg  (labelled differently!)"


def test_copies_within_a_set_unreadable_files_and_tiny_photos_are_notes(tmp_path, check):
    data = clean_dataset(tmp_path / "data")
    shutil.copy(data / "Training_Set/Cats/cats.0.jpg", data / "Training_Set/Cats/again.jpg")
    (data / "Training_Set/Dogs/empty.jpg").write_bytes(b"")
    make_photo(data / "Test_Set/Dogs/thumb.jpg", COLOURS["Dogs"], size=(12, 10), seed=99)
    code, lines, _ = check(data)
    assert code == 0, lines
    assert finding(lines, "note: 1 unreadable file, which training skips:")
    assert "  Training_Set/Dogs/empty.jpg: empty file (0 bytes)" in lines
    assert finding(lines, "note: 1 pair of exact copies within a set")
    assert "  Training_Set/Cats/again.jpg = Training_Set/Cats/cats.0.jpg" in lines
    assert finding(lines, f"note: 1 photo smaller than {IMAGE_SIZE // 2} px on a side")
    assert "  Test_Set/Dogs/thumb.jpg: 12x10" in lines


def test_a_strong_imbalance_is_a_problem(tmp_path, check):
    data = clean_dataset(tmp_path / "data", train_per_class=2)
    for index in range(6):
        make_photo(data / "Training_Set/Dogs" / f"more.{index}.jpg", COLOURS["Dogs"], size=(48, 40), seed=200 + index)
    code, lines, _ = check(data)
    assert code == 1, lines
    assert finding(lines, "PROBLEM: Training_Set is imbalanced: Cats 2, Dogs 8 (4.0:1)")


def test_a_wrong_layout_is_the_error_training_gives(tmp_path, check):
    code, lines, stderr = check(tmp_path / "nowhere")
    assert code == 2 and lines == []
    assert stderr == (f"error: {tmp_path / 'nowhere' / 'Training_Set'} not found: --data must hold Training_Set/ and Test_Set/, "
                      "each with one folder per class\n")


def test_check_is_a_job_of_its_own(tmp_path, run):
    result = run("train_CNN.py", "--check", "--export", "tflite")
    assert result.returncode == 2 and "--check are separate jobs" in result.stderr


def test_near_pairs_finds_hashes_a_few_bits_apart():
    rng = np.random.default_rng(0)
    hashes = [int(value) for value in rng.integers(0, 2**63, size=600, dtype=np.int64)]  # more than one block
    hashes[550] = hashes[3] ^ 0b1011                  # 3 bits apart: a near copy
    hashes[551] = hashes[4] ^ ((1 << (NEAR_BITS + 1)) - 1)  # NEAR_BITS + 1 bits apart: not
    hashes[599] = hashes[0]
    assert near_pairs(hashes) == [(0, 599), (3, 550)]


# The short form, at the start of every training run.

def samples_of(data, split):
    paths = sorted(Path(data, split).glob("*/*"))
    return [Sample(path, list(COLOURS).index(path.parent.name), check_photo(path, IMAGE_SIZE)) for path in paths]


def test_quick_check_is_silent_on_a_clean_dataset(tmp_path, capsys):
    data = clean_dataset(tmp_path / "data")
    assert quick_check(samples_of(data, "Training_Set"), samples_of(data, "Test_Set"), list(COLOURS), IMAGE_SIZE) == []
    assert capsys.readouterr().err == ""


def test_quick_check_warns_of_leakage_imbalance_and_tiny_photos_in_a_line_each(tmp_path, capsys):
    data = clean_dataset(tmp_path / "data", train_per_class=2, test_per_class=2)
    for index in range(6):
        make_photo(data / "Training_Set/Dogs" / f"more.{index}.jpg", COLOURS["Dogs"], seed=300 + index)
    shutil.copy(data / "Training_Set/Cats/cats.0.jpg", data / "Test_Set/Cats/copy.jpg")
    make_photo(data / "Test_Set/Dogs/thumb.jpg", COLOURS["Dogs"], size=(12, 10), seed=99)
    lines = quick_check(samples_of(data, "Training_Set"), samples_of(data, "Test_Set"), list(COLOURS), IMAGE_SIZE)
    assert capsys.readouterr().err.splitlines() == [f"warning: {line}" for line in lines] and len(lines) == 3
    assert lines[0].startswith("Training_Set is imbalanced: Cats 2, Dogs 8 (4.0:1)")
    assert lines[1] == ("1 Test_Set photo is an exact copy of a Training_Set photo, so the test score is too high; "
                        "`python train_CNN.py --check` with the same --data lists them")
    assert lines[2].startswith(f"1 photo is smaller than {IMAGE_SIZE // 2} px on a side")


def test_quick_check_reads_no_photo_again(tmp_path, capsys, monkeypatch):
    """The size and hash come from training's own photo check (images.check_photo): one read per photo."""
    import builtins
    import os

    from classifier import images
    data = clean_dataset(tmp_path / "data", train_per_class=2, test_per_class=2)
    shutil.copy(data / "Training_Set/Cats/cats.0.jpg", data / "Test_Set/Cats/copy.jpg")
    train, test = samples_of(data, "Training_Set"), samples_of(data, "Test_Set")

    def no_reading(*args, **kwargs):
        raise AssertionError("a photo was read again")
    for module, name in ((images, "read_bytes"), (images, "open_file"), (builtins, "open"), (os, "open")):
        monkeypatch.setattr(module, name, no_reading)
    lines = quick_check(train, test, list(COLOURS), IMAGE_SIZE)
    monkeypatch.undo()
    assert lines and lines[0].startswith("1 Test_Set photo is an exact copy of a Training_Set photo")


def test_every_training_run_starts_with_the_short_form(tmp_path, run):
    data = clean_dataset(tmp_path / "data", train_per_class=3, test_per_class=2)
    shutil.copy(data / "Training_Set/Dogs/dogs.0.jpg", data / "Test_Set/Dogs/copy.jpg")
    result = run("train_CNN.py", "--data", data, "--output", tmp_path / "out", "--arch", "logistic", "--epochs", 1,
                 "--image-size", IMAGE_SIZE)
    assert result.returncode == 0, result.stderr
    assert "warning: 1 Test_Set photo is an exact copy of a Training_Set photo" in result.stderr


@pytest.mark.skipif(not SHARED_DATASET.is_dir(), reason=f"{SHARED_DATASET} not found")
def test_the_shared_dataset_sample_has_no_imbalance(tmp_path, check):
    """A few hundred of the shared photos, linked: the check reads real JPEGs and finishes in seconds."""
    for split, count in (("Training_Set", 60), ("Test_Set", 20)):
        for name in ("Cats", "Dogs"):
            (tmp_path / split / name).mkdir(parents=True)
            for source in sorted((SHARED_DATASET / split / name).iterdir())[:count]:
                (tmp_path / split / name / source.name).symlink_to(source)
    code, lines, _ = check(tmp_path, "--image-size", 224)
    assert code in (0, 1) and lines[2].split() == ["Cats", "60", "20"] and finding(lines, "ok: the classes are balanced")
