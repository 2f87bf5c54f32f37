"""predict.py through main(argv), as a user runs it: a line per image, the CSV, and its exit codes.
(The README's quick start runs it in a fresh Python; here --help does, to show it answers at once.)"""
import csv

from conftest import COLOURS, make_photo, run_script


def model_args(trained):
    output, _ = trained
    return ["--model", output / "model.h5", "--weights", output / "weights.h5"]


def test_labels_every_image_and_writes_csv(tmp_path, trained, run):
    photos = tmp_path / "photos"
    for index, (name, colour) in enumerate(COLOURS.items()):
        make_photo(photos / f"{name}.jpg", colour, seed=100 + index)
        make_photo(photos / "nested" / f"{name} with spaces é.png", colour, size=(300, 200), format="PNG")
    result = run("predict.py", photos, *model_args(trained), "--csv", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    for line in lines:
        path, label, confidence = line.split("\t")
        assert label in COLOURS and 0.5 <= float(confidence) <= 1
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["path", "label", "confidence", "unknown_score"]
    printed = [tuple(line.split("\t")) for line in lines]
    assert [(row["path"], row["label"], row["confidence"]) for row in rows] == printed  # the printed rows, exactly


def test_bad_files_are_named_and_exit_1(tmp_path, trained, run):
    make_photo(tmp_path / "good.jpg", COLOURS["Dogs"])
    (tmp_path / "broken.jpg").write_text("this is text")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0")  # not an image name: ignored, like Keras does
    result = run("predict.py", tmp_path, *model_args(trained))
    assert result.returncode == 1
    assert len(result.stdout.strip().splitlines()) == 1 and "good.jpg" in result.stdout
    assert "broken.jpg" in result.stderr and ".DS_Store" not in result.stderr


def test_no_images_found_exit_2(tmp_path, trained, run):
    (tmp_path / "notes.txt").write_text("no photos here")
    result = run("predict.py", tmp_path, *model_args(trained))
    assert result.returncode == 2
    assert "no images found" in result.stderr and str(tmp_path) in result.stderr


def test_missing_model_file_exit_2(tmp_path, trained, run):
    make_photo(tmp_path / "a.jpg", COLOURS["Cats"])
    output, _ = trained
    result = run("predict.py", tmp_path / "a.jpg", "--model", tmp_path / "nope.h5", "--weights", output / "weights.h5")
    assert result.returncode == 2 and "nope.h5 not found" in result.stderr


def test_not_an_hdf5_model_exit_2(tmp_path, trained, run):
    make_photo(tmp_path / "a.jpg", COLOURS["Cats"])
    (tmp_path / "model.h5").write_text("garbage")
    output, _ = trained
    result = run("predict.py", tmp_path / "a.jpg", "--model", tmp_path / "model.h5", "--weights", output / "weights.h5")
    assert result.returncode == 2 and "not a readable HDF5 model file" in result.stderr


def test_evaluate_prints_accuracy_and_confusion_matrix(trained, dataset, run):
    result = run("predict.py", "--evaluate", dataset / "Test_Set", *model_args(trained))
    assert result.returncode == 0, result.stderr
    assert "accuracy:" in result.stdout and "on 12 images" in result.stdout
    assert "confusion matrix" in result.stdout and "recall" in result.stdout


def test_help_answers_at_once():
    result = run_script("predict.py", "--help")
    assert result.returncode == 0 and "--csv" in result.stdout


def test_the_shipped_model_on_a_dataset_of_other_classes_hints_at_model(tmp_path, run, monkeypatch):
    """Three cat breeds in Dataset/Training_Set, and predict.py without --model: the shipped Cats/Dogs
    model answers, with one line saying which --model was probably meant; with Cats and Dogs there, none."""
    from classifier import config

    monkeypatch.setattr(config, "DATASET_DIR", tmp_path / "Dataset")
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    for name in ("AmericanCurl", "Bengal", "Siamese"):
        (tmp_path / "Dataset" / "Training_Set" / name).mkdir(parents=True)
    (tmp_path / "runs" / "efficientnet-lite0").mkdir(parents=True)
    (tmp_path / "runs" / "efficientnet-lite0" / "model.h5").write_bytes(b"")
    photo = make_photo(tmp_path / "cat.jpg", COLOURS["Cats"])
    result = run("predict.py", photo)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "knows Cats, Dogs" in notes[0] and "AmericanCurl, Bengal, Siamese" in notes[0], result.stderr
    assert notes[0].endswith(f"pass --model {config.short_path(tmp_path / 'runs' / 'efficientnet-lite0' / 'model.h5')}")
    for name in ("AmericanCurl", "Bengal", "Siamese"):
        (tmp_path / "Dataset" / "Training_Set" / name).rmdir()
    for name in ("Cats", "Dogs"):
        (tmp_path / "Dataset" / "Training_Set" / name).mkdir()
    result = run("predict.py", photo)
    assert result.returncode == 0 and "note:" not in result.stderr, result.stderr
