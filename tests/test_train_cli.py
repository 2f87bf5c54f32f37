"""train_CNN.py as a user runs it: the files it writes, and every refusal before training starts."""
import json
import re
import shutil
import subprocess
import sys

import h5py

from classifier import artifacts
from conftest import PROJECT, THREE_COLOURS, make_dataset, make_photo


def test_training_writes_both_files_and_reports(trained):
    output, result = trained
    assert (output / "model.h5").is_file() and (output / "weights.h5").is_file()
    assert "Test_Set accuracy:" in result.stdout
    assert (output / "reports" / "training_log.csv").read_text().count("\n") == 2  # header + 1 epoch
    assert (output / "reports" / "learning_curves.png").stat().st_size > 1000
    assert not (output / "checkpoint").exists()  # cleaned up after a finished run


def test_refuses_to_overwrite_a_trained_model(trained, dataset, run):
    output, _ = trained
    before = (output / "model.h5").read_bytes()
    result = run("train_CNN.py", "--data", dataset, "--output", output, "--arch", "cnn", "--epochs", 1, "--image-size", 32)
    assert result.returncode == 2
    assert "--overwrite" in result.stderr and "model.h5" in result.stderr
    assert (output / "model.h5").read_bytes() == before


def test_overwrite_replaces_the_model(tmp_path, dataset, run):
    shutil.copytree(dataset, tmp_path / "data")
    (tmp_path / "model.h5").write_bytes(b"old")
    result = run("train_CNN.py", "--data", tmp_path / "data", "--output", tmp_path, "--epochs", 1,
                 "--image-size", 32, "--arch", "logistic", "--overwrite")
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "model.h5") as file:
        assert "model_weights" in file
    assert artifacts.ModelInfo.read(tmp_path / "model.h5").model == "logistic"


def test_unreadable_files_are_skipped_with_one_warning_each(tmp_path, run):
    data = make_dataset(tmp_path / "data", train_per_class=4, test_per_class=2)
    (data / "Training_Set" / "Cats" / "empty.jpg").write_bytes(b"")
    (data / "Training_Set" / "Dogs" / "notes.jpg").write_text("not a photo")
    good = make_photo(data / "Test_Set" / "Dogs" / "cut.jpg", (200, 100, 50))
    good.write_bytes(good.read_bytes()[:200])  # truncated JPEG
    result = run("train_CNN.py", "--data", data, "--output", tmp_path / "out", "--epochs", 1,
                 "--image-size", 32, "--arch", "logistic")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 3
    assert any("empty.jpg" in line and "empty file" in line for line in warnings)
    assert "Skipped 3 unreadable files" in result.stdout
    # 4 good photos a class: 10 % held out, at least one a class; the truncated Test_Set photo is skipped too.
    assert "Training_Set: 6 images for training, 2 held out for validation; Test_Set: 4 images" in result.stdout


def layout_error(tmp_path, run, arrange):
    data = make_dataset(tmp_path / "data", train_per_class=2, test_per_class=1)
    arrange(data)
    result = run("train_CNN.py", "--data", data, "--output", tmp_path / "out", "--arch", "logistic")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "out" / "model.h5").exists()
    return result.stderr


def test_missing_test_set(tmp_path, run):
    message = layout_error(tmp_path, run, lambda data: shutil.rmtree(data / "Test_Set"))
    assert "Test_Set not found" in message


def test_three_class_folders_train_and_predict_end_to_end(tmp_path, run):
    names = sorted(THREE_COLOURS)  # Birds, Cats, Dogs: the labels follow the sorted folder names
    data = make_dataset(tmp_path / "data", train_per_class=12, test_per_class=4, colours=THREE_COLOURS)
    output = tmp_path / "out"
    result = run("train_CNN.py", "--data", data, "--output", output, "--arch", "logistic", "--epochs", 1, "--image-size", 32)
    assert result.returncode == 0, result.stderr
    assert "classes: Birds (0), Cats (1), Dogs (2)" in result.stdout
    model, info = artifacts.load(output / "model.h5")
    assert model.output_shape == (None, 3) and info.class_names == names
    summary = (output / "reports" / "summary.md").read_text(encoding="utf-8")
    assert "| true \\ predicted | Birds | Cats | Dogs |" in summary
    for name in names:  # a 3x3 matrix: each class's 4 Test_Set photos, once
        [row] = re.findall(rf"^\| {name} \| (\d+) \| (\d+) \| (\d+) \|$", summary, flags=re.MULTILINE)
        assert sum(map(int, row)) == 4

    # predict.py scores Test_Set as training did, and labels new photos with the three names.
    evaluation = run("predict.py", "--evaluate", data / "Test_Set", "--model", output / "model.h5")
    assert evaluation.returncode == 0, evaluation.stderr
    trained_accuracy = re.search(r"Test_Set accuracy: ([\d.]+%)", result.stdout).group(1)
    assert f"accuracy: {trained_accuracy} on 12 images" in evaluation.stdout
    for index, name in enumerate(names):
        for copy in range(2):
            make_photo(tmp_path / "photos" / f"{name}-{copy}.jpg", THREE_COLOURS[name], seed=100 + 10 * index + copy)
    labelled = run("predict.py", tmp_path / "photos", "--model", output / "model.h5", "--json")
    assert labelled.returncode == 0, labelled.stderr
    rows = json.loads(labelled.stdout)
    assert len(rows) == 6
    for row in rows:
        assert list(row["probabilities"]) == names and abs(sum(row["probabilities"].values()) - 1) < 1e-3
        assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)
    right = sum(row["label"] == row["path"].rsplit("/", 1)[1].split("-")[0] for row in rows)
    assert right >= 5, rows  # chance is 2 of 6; one epoch on these colours labels them all


def test_class_folders_differ_between_sets(tmp_path, run):
    message = layout_error(tmp_path, run, lambda data: (data / "Test_Set" / "Dogs").rename(data / "Test_Set" / "Wolves"))
    assert "differ" in message and "Wolves" in message


def test_empty_class_folder(tmp_path, run):
    def empty_dogs(data):
        shutil.rmtree(data / "Training_Set" / "Dogs")
        (data / "Training_Set" / "Dogs").mkdir()
        (data / "Training_Set" / "Dogs" / "README.txt").write_text("put photos here")
    message = layout_error(tmp_path, run, empty_dogs)
    assert "Dogs holds no photos" in message


def test_help_and_usage_errors_answer_without_loading_tensorflow(run):
    result = run("train_CNN.py", "--help")
    assert result.returncode == 0 and "--overwrite" in result.stdout
    result = run("train_CNN.py", "--epochs", "0")
    assert result.returncode == 2 and "--epochs must be at least 1" in result.stderr
    for script, argv in (("train_CNN", ["--help"]), ("predict", ["--help"]), ("train_CNN", ["--data", "/nonexistent"])):
        assert imports_tensorflow(script, argv) is False


def imports_tensorflow(script, argv):
    """Run SCRIPT.main(argv) in a fresh Python and tell whether it imported TensorFlow."""
    code = (f"import sys, {script}\n"
            f"try:\n    {script}.main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True)
    return {"True": True, "False": False}[result.stdout.strip().splitlines()[-1]]


def test_the_cnn_learns_from_a_few_hundred_photos(tmp_path, run):
    """The from-scratch CNN on a small set: a few dozen steps in all. With Keras's BatchNormalization
    momentum of 0.99 the moving statistics used at test time stayed near their starting values and
    every test photo got the same label (exactly 50 %); the models use 0.9 (model.conv_block)."""
    data = make_dataset(tmp_path / "data", train_per_class=100, test_per_class=25)
    result = run("train_CNN.py", "--data", data, "--output", tmp_path / "run", "--arch", "cnn",
                 "--image-size", 32, "--epochs", 3, "--batch-size", 16)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"Test_Set accuracy: ([\d.]+)%", result.stdout).group(1))
    assert accuracy >= 90, result.stdout  # chance is 50 %
    assert "never rose above chance" not in result.stdout
