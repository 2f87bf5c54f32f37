"""train_CNN.py as a user runs it: the files it writes, and every refusal before training starts."""
import shutil
import subprocess
import sys

import h5py

from conftest import PROJECT, make_dataset, make_photo, run_script


def test_training_writes_both_files_and_reports(trained):
    output, result = trained
    assert (output / "model.h5").is_file() and (output / "weights.h5").is_file()
    assert "Test_Set accuracy:" in result.stdout
    assert (output / "reports" / "training_log.csv").read_text().count("\n") == 2  # header + 1 epoch
    assert (output / "reports" / "learning_curves.png").stat().st_size > 1000
    assert not (output / "checkpoint").exists()  # cleaned up after a finished run


def test_terminal_shows_no_tensorflow_log_noise(trained):
    _, result = trained
    for noise in ("cuda", "oneDNN", "absl", "I0000", "UserWarning"):
        assert noise not in result.stdout + result.stderr


def test_refuses_to_overwrite_a_trained_model(trained, dataset):
    output, _ = trained
    before = (output / "model.h5").read_bytes()
    result = run_script("train_CNN.py", "--data", dataset, "--output", output, "--epochs", 1, "--image-size", 32)
    assert result.returncode == 2
    assert "--overwrite" in result.stderr and "model.h5" in result.stderr
    assert (output / "model.h5").read_bytes() == before


def test_overwrite_replaces_the_model(tmp_path, dataset):
    shutil.copytree(dataset, tmp_path / "data")
    (tmp_path / "model.h5").write_bytes(b"old")
    result = run_script("train_CNN.py", "--data", tmp_path / "data", "--output", tmp_path, "--epochs", 1,
                        "--image-size", 32, "--model", "logistic", "--overwrite")
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "model.h5") as file:
        assert "model_weights" in file


def test_unreadable_files_are_skipped_with_one_warning_each(tmp_path):
    data = make_dataset(tmp_path / "data", train_per_class=4, test_per_class=2)
    (data / "Training_Set" / "Cats" / "empty.jpg").write_bytes(b"")
    (data / "Training_Set" / "Dogs" / "notes.jpg").write_text("not a photo")
    good = make_photo(data / "Test_Set" / "Dogs" / "cut.jpg", (200, 100, 50))
    good.write_bytes(good.read_bytes()[:200])  # truncated JPEG
    result = run_script("train_CNN.py", "--data", data, "--output", tmp_path / "out", "--epochs", 1,
                        "--image-size", 32, "--model", "logistic")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 3
    assert any("empty.jpg" in line and "empty file" in line for line in warnings)
    assert "Skipped 3 unreadable files" in result.stdout
    assert "Training_Set: 8 images, Test_Set: 4 images" in result.stdout


def layout_error(tmp_path, arrange):
    data = make_dataset(tmp_path / "data", train_per_class=2, test_per_class=1)
    arrange(data)
    result = run_script("train_CNN.py", "--data", data, "--output", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "out" / "model.h5").exists()
    return result.stderr


def test_missing_test_set(tmp_path):
    message = layout_error(tmp_path, lambda data: shutil.rmtree(data / "Test_Set"))
    assert "Test_Set not found" in message


def test_three_class_folders(tmp_path):
    message = layout_error(tmp_path, lambda data: make_photo(data / "Training_Set" / "Birds" / "b.jpg", (0, 0, 0)))
    assert "exactly 2 class folders" in message and "Birds" in message


def test_class_folders_differ_between_sets(tmp_path):
    message = layout_error(tmp_path, lambda data: (data / "Test_Set" / "Dogs").rename(data / "Test_Set" / "Wolves"))
    assert "differ" in message and "Wolves" in message


def test_empty_class_folder(tmp_path):
    def empty_dogs(data):
        shutil.rmtree(data / "Training_Set" / "Dogs")
        (data / "Training_Set" / "Dogs").mkdir()
        (data / "Training_Set" / "Dogs" / "README.txt").write_text("put photos here")
    message = layout_error(tmp_path, empty_dogs)
    assert "Dogs has no readable images" in message


def test_help_and_usage_errors_answer_without_loading_tensorflow():
    result = run_script("train_CNN.py", "--help")
    assert result.returncode == 0 and "--overwrite" in result.stdout
    result = run_script("train_CNN.py", "--epochs", "0")
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
