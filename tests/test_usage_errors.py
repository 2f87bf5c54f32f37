"""Usage errors answer before TensorFlow loads (it takes seconds to start): one `error:` line that
names what to fix, and exit code 2. The line is checked in-process through main(argv); that no
TensorFlow was imported, in a fresh Python (this one loaded it long ago, for other tests)."""
import re
import subprocess
import sys

import pytest

from classifier.config import EXIT_USAGE
from conftest import COLOURS, PROJECT, make_photo

# name: (script, its arguments, the start of the error line); {tmp} is the test's folder, which holds
# photo.jpg, not-a-model.h5 and not-weights.h5. The unreadable weights go with the shipped model.h5.
CASES = {
    "nothing to resume": ("train_CNN.py", ["--resume", "--output", "{tmp}/nowhere"], "nothing to resume in {tmp}/nowhere: "),
    "no folder to evaluate": ("predict.py", ["--evaluate", "{tmp}/nowhere"], "{tmp}/nowhere: no such folder: --evaluate takes "),
    "no class folders to evaluate": ("predict.py", ["--evaluate", "{tmp}"], "{tmp} holds no class folders: --evaluate takes "),
    "missing model": ("predict.py", ["--model", "{tmp}/nowhere.h5", "{tmp}/photo.jpg"], "{tmp}/nowhere.h5 not found: "),
    "unreadable model": ("predict.py", ["--model", "{tmp}/not-a-model.h5", "{tmp}/photo.jpg"],
                         "{tmp}/not-a-model.h5 is not a readable HDF5 model file"),
    "unreadable weights": ("predict.py", ["--weights", "{tmp}/not-weights.h5", "{tmp}/photo.jpg"],
                           "{tmp}/not-weights.h5 is not a readable HDF5 weights file"),
}


def arguments(case, tmp_path):
    """(script, argv, start of the error line) of a case, with its files made in tmp_path."""
    make_photo(tmp_path / "photo.jpg", COLOURS["Cats"])
    (tmp_path / "not-a-model.h5").write_text("not a model")
    (tmp_path / "not-weights.h5").write_text("not weights")
    script, argv, starts = CASES[case]
    return script, [arg.format(tmp=tmp_path) for arg in argv], starts.format(tmp=tmp_path)


@pytest.mark.parametrize("case", CASES)
def test_a_usage_error_is_one_line_and_exit_2(case, tmp_path, run):
    script, argv, starts = arguments(case, tmp_path)
    result = run(script, *argv)
    assert result.returncode == EXIT_USAGE, result
    assert result.stderr.startswith(f"error: {starts}") and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("case", CASES)
def test_a_usage_error_answers_before_tensorflow_loads(case, tmp_path):
    script, argv, starts = arguments(case, tmp_path)
    module = script.removesuffix(".py")
    snippet = f"import sys; import {module}; code = {module}.main({argv!r}); print(code, 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", snippet], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == [str(EXIT_USAGE), "False"], (result.stdout, result.stderr)
    assert result.stderr.startswith(f"error: {starts}"), result.stderr


@pytest.mark.parametrize("script, typo, meant", [("train_CNN.py", "--epohcs", "--epochs"), ("predict.py", "--unsure-bellow", "--unsure-below"),
                                                 ("serve.py", "--max-flies", "--max-files")])
def test_a_mistyped_flag_gets_the_one_meant(run, script, typo, meant):
    result = run(script, typo)
    assert result.returncode == 2 and result.stderr.splitlines()[-1].endswith(f"unrecognized arguments: {typo} (did you mean {meant}?)")


def test_the_smallest_image_size_is_the_models(capsys):
    import train_CNN

    assert train_CNN.parse_args(["--arch", "logistic", "--image-size", "16"]).image_size == 16  # pixels need no convolution
    with pytest.raises(SystemExit) as stopped:
        train_CNN.parse_args(["--arch", "cnn", "--image-size", "16"])
    assert stopped.value.code == 2 and capsys.readouterr().err.splitlines()[-1].endswith(
        "error: --image-size must be at least 32 for --arch cnn")


@pytest.mark.parametrize("script", ["predict.py", "serve.py"])
def test_unsure_below_has_one_range_in_help_error_and_readme(run, script):
    # --help once said 0.5-1 where the error said between 0 and 1.
    help_text = " ".join(run(script, "--help").stdout.split())
    stated = re.search(r"--unsure-below P .*?confidence is below P(?:, as predict.py does)? \(([^;]+);", help_text).group(1)
    result = run(script, "--unsure-below", "1.5")
    assert result.returncode == EXIT_USAGE and f"--unsure-below takes a confidence {stated}, such as" in result.stderr, result.stderr
    assert f"below P ({stated};" in (PROJECT / "README.md").read_text(encoding="utf-8")
