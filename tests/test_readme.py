"""The README's quick start, run as a newcomer runs it: every command of its bash block, in order,
in a copy of the project (as a fresh clone has it) on generated photos, in about a minute.

Each command the quick start shows must be one this file knows how to check (QUICK_START): a
command added, changed or removed there fails test_quick_start_commands_are_the_ones_tested
until it is taught here. The set-up commands are what .ci/run does, so they are checked as text;
the others run in a fresh Python, as typed, with two documented additions: the download reads a
small local zip (the hidden --dataset-url the download tests use), and training takes the
README's one-minute check settings (--epochs 1 --image-size 32).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import COLOURS, PROJECT, make_photo

README = PROJECT / "README.md"
CI = PROJECT / ".ci" / "run"
QUICK_CHECK = ["--epochs", "1", "--image-size", "32"]  # the README's "check an installation in about a minute"
RUN_FOLDER = "runs/efficientnet-lite0"                   # where the first run of the default model goes
PHOTOS = "photos"                                         # the folder of "your photos" in the quick start
TENSORFLOW_NOISE = ("cuda", "oneDNN", "absl", "I0000", "UserWarning")  # what TensorFlow's C++ start-up can print


def section(heading):
    """The README's text from `## heading` to the next `## ` heading."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


def bash_commands(text):
    """Each command line of the ```bash blocks in text, comments dropped, as one normalised string."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(" ".join(words))
    return commands


# --- How each quick-start command is checked -----------------------------------------------------

def ci_text():
    return CI.read_text(encoding="utf-8")


def check_venv(work, run):
    assert "python3 -m venv .venv" in ci_text(), ".ci/run no longer makes the venv the quick start makes"


def check_install(work, run):
    assert "pip install" in ci_text() and "-r requirements.txt" in ci_text(), ".ci/run no longer installs requirements.txt"
    assert (PROJECT / "requirements.txt").is_file()


def check_pytest(work, run):
    assert re.search(r"python -m pytest\b", ci_text()), ".ci/run no longer runs the tests as the quick start does"


def label_with_shipped_model(work, run):
    result = run("predict.py", PHOTOS)
    assert result.returncode == 0, result.stderr
    # The photos are squares of one colour, no cat and no dog: the shipped model must say so.
    assert_labelled(result, {"unknown"})


def download(work, run):
    archive = make_archive(work.parent / "archive")
    result = run("train_CNN.py", "--download-dataset", "--dataset-url", archive.as_uri())
    assert result.returncode == 0, result.stderr
    assert "Train with: python train_CNN.py" in result.stdout
    for split in ("Training_Set", "Test_Set"):
        for name in COLOURS:
            assert list((work / "Dataset" / split / name).glob("*.jpg")), f"the download put no photo in {split}/{name}"


def train_default(work, run):
    result = run("train_CNN.py", *QUICK_CHECK)
    assert result.returncode == 0, result.stderr
    assert (work / RUN_FOLDER / "model.h5").is_file() and (work / RUN_FOLDER / "reports" / "index.html").is_file()
    # What the run says to do next is what the quick start says to do next.
    assert f"Label photos with it: python predict.py PHOTOS --model {RUN_FOLDER}/model.h5" in result.stdout


def label_with_trained_model(work, run):
    result = run("predict.py", PHOTOS, "--model", f"{RUN_FOLDER}/model.h5")
    assert result.returncode == 0, result.stderr
    assert f"weights: {RUN_FOLDER}/weights.h5" in result.stderr  # its own weights, not the shipped ones
    assert_labelled(result, set(COLOURS))


QUICK_START = {  # the quick start's commands, in its order, and how each is checked
    "python3 -m venv .venv && . .venv/bin/activate": check_venv,
    "pip install -r requirements.txt": check_install,
    "python predict.py photos/": label_with_shipped_model,
    "python train_CNN.py --download-dataset": download,
    "python train_CNN.py": train_default,
    f"python predict.py photos/ --model {RUN_FOLDER}/model.h5": label_with_trained_model,
    "python -m pytest -q": check_pytest,
}


# --- Helpers -------------------------------------------------------------------------------------

def fresh_copy(root):
    """The project as a fresh clone has it: the scripts, the package, the shipped model and the empty
    Dataset/ folders (their README.txt only). Training writes runs/ here, never in the project."""
    work = root / "project"
    work.mkdir()
    for name in ("train_CNN.py", "predict.py", "serve.py", "requirements.txt", "model.h5", "weights.h5", "model.tflite"):
        shutil.copy2(PROJECT / name, work / name)
    shutil.copytree(PROJECT / "classifier", work / "classifier", ignore=shutil.ignore_patterns("__pycache__"))
    for readme in (PROJECT / "Dataset").rglob("README.txt"):
        target = work / readme.relative_to(PROJECT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(readme, target)
    return work


def make_archive(root, per_class=6):
    """A zip in the layout of Microsoft's: PetImages/Cat/0.jpg ..., PetImages/Dog/0.jpg ..."""
    for folder, name in (("Cat", "Cats"), ("Dog", "Dogs")):
        for index in range(per_class):
            make_photo(root / "PetImages" / folder / f"{index}.jpg", COLOURS[name], seed=index)
    archive = root / "kagglecatsanddogs_test.zip"
    with zipfile.ZipFile(archive, "w") as file:
        for path in sorted((root / "PetImages").rglob("*.jpg")):
            file.write(path, path.relative_to(root))
    return archive


def assert_labelled(result, labels):
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(COLOURS), result.stdout
    for line in lines:
        path, label, confidence = line.split("\t")
        assert path.startswith(PHOTOS + "/") and label in labels and 0 <= float(confidence) <= 1, line


def runner(work):
    """run("predict.py", ...): `python predict.py ...` typed in the project folder, in a fresh Python."""
    environment = {**os.environ, "KERAS_HOME": str(work.parent / "keras")}  # the download's cache, not ~/.keras

    def run(script, *args):
        result = subprocess.run([sys.executable, script, *args], cwd=work, env=environment,
                                capture_output=True, text=True, timeout=300)
        for noise in TENSORFLOW_NOISE:  # a clean terminal: our lines and Keras's progress, no TensorFlow log
            assert noise not in result.stdout + result.stderr, f"`{script} {' '.join(args)}` printed {noise}:\n{result.stderr}"
        return result
    return run


# --- The tests -----------------------------------------------------------------------------------

def test_quick_start_commands_are_the_ones_tested():
    found = bash_commands(section("Quick start"))
    assert found == list(QUICK_START), ("the README's quick start changed: teach tests/test_readme.py (QUICK_START) "
                                        "to check each new or changed command")


def test_quick_start_fits_on_one_screen_and_the_readme_stays_short():
    assert len(section("Quick start").splitlines()) <= 40
    assert len(README.read_text(encoding="utf-8").splitlines()) < 400


def test_quick_start_runs_on_a_fresh_copy(tmp_path):
    work = fresh_copy(tmp_path)
    for index, name in enumerate(COLOURS):  # your photos
        make_photo(work / PHOTOS / f"{name.lower()}.jpg", COLOURS[name], size=(64, 48), seed=100 + index)
    run = runner(work)
    for command in bash_commands(section("Quick start")):
        QUICK_START[command](work, run)


@pytest.mark.parametrize("script", ["train_CNN.py", "predict.py", "serve.py"])
def test_every_flag_the_readme_shows_exists(script):
    """Each --flag on a `python SCRIPT ...` line of the README's bash blocks is one SCRIPT --help lists."""
    shown = set()
    for command in bash_commands(README.read_text(encoding="utf-8")):
        words = command.split()
        if words[:2] == ["python", script]:
            shown |= {word.split("=")[0] for word in words[2:] if word.startswith("--")}
    help_text = subprocess.run([sys.executable, str(PROJECT / script), "--help"], capture_output=True, text=True,
                               timeout=60).stdout
    listed = set(re.findall(r"(--[a-z][a-z0-9-]*)", help_text))
    assert shown <= listed, f"the README shows {sorted(shown - listed)}, which `{script} --help` does not list"


def test_the_readme_and_serve_py_help_give_its_stop_time_as_the_server_waits():
    import serve  # conftest puts the scripts on sys.path

    help_text = subprocess.run([sys.executable, str(PROJECT / "serve.py"), "--help"], capture_output=True, text=True, timeout=60).stdout
    stop = f"({serve.STOP_SECONDS} s at most)"  # what uvicorn is given to finish the requests under way
    assert stop in " ".join(help_text.split()) and stop in " ".join(README.read_text(encoding="utf-8").split())
