"""Shared fixtures: small image folders generated with Pillow, and the two scripts run in-process
through main(argv) (fast) or in a fresh Python exactly as a user types them (a few smoke tests)."""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from PIL import Image

PROJECT = Path(__file__).resolve().parent.parent
SHARED_DATASET = PROJECT.parent / "shared" / "datasets" / "cats_vs_dogs"
COLOURS = {"Cats": (40, 60, 160), "Dogs": (220, 140, 40)}  # two easily told apart "species"
THREE_COLOURS = {**COLOURS, "Birds": (40, 200, 60)}

if str(PROJECT) not in sys.path:  # the scripts, imported by the in-process tests
    sys.path.insert(0, str(PROJECT))


def make_photo(path, colour, size=(40, 40), seed=0, mode="RGB", **save_options):
    """A noisy picture of one colour: enough for a model to learn, small enough to be quick."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(colour, 30, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save_options)
    return path


def make_dataset(root, train_per_class=12, test_per_class=6, colours=COLOURS):
    # Other seeds for Test_Set: copies of training photos there would be leakage (and a warning).
    for split, count, first_seed in (("Training_Set", train_per_class, 0), ("Test_Set", test_per_class, 10_000)):
        for name, colour in colours.items():
            for index in range(count):
                make_photo(Path(root, split, name, f"{name.lower()}.{index}.jpg"), colour, seed=first_seed + index)
    return Path(root)


@dataclass
class Result:
    """What a script run leaves: its exit code and what it printed (as subprocess.run's result)."""
    returncode: int
    stdout: str
    stderr: str


def run_main(script, *args, capsys):
    """Call train_CNN.main(argv) or predict.main(argv) in this process: a fraction of a fresh Python's start-up."""
    module = __import__(script.removesuffix(".py"))
    capsys.readouterr()
    try:
        code = module.main([str(arg) for arg in args])
    except SystemExit as exit:  # argparse's --help and usage errors
        code = exit.code
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def run_script(script, *args, cwd=None, timeout=600):
    """Run train_CNN.py or predict.py in a fresh Python, as a user does in a terminal."""
    return subprocess.run([sys.executable, str(PROJECT / script), *map(str, args)], cwd=cwd or PROJECT,
                          capture_output=True, text=True, timeout=timeout)


def ctrl_c_as_in_a_terminal():
    """preexec_fn for a script a test stops with SIGINT: a background job (pytest started with &)
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def skip_without_chromium(reason):
    """The browser tests skip where Debian's Chromium is missing, but fail in CI, where .ci/run installs
    it and sets REQUIRE_CHROMIUM=1: a failed install must not turn them into skips and CI stay green."""
    if os.environ.get("REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"REQUIRE_CHROMIUM=1 but {reason}")
    pytest.skip(reason)


def pytest_configure(config):
    """What the scripts do first (images.configure_pillow), before any test module is collected: the
    tests call the package directly, and some make HEIC photos at import."""
    from classifier.images import configure_pillow
    configure_pillow()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """pytest-xdist's start-up status ("bringing up nodes...", "created: 2/2 workers") is noise unless -v
    asks for it: its reporter then prints nothing but a worker going down (write_line)."""
    reporter = session.config.pluginmanager.get_plugin("terminaldistreporter")
    if reporter is not None and session.config.get_verbosity() <= 0:
        reporter.ensure_show_status = lambda: None
        reporter.rewrite = lambda line, newline=False: None


@pytest.fixture
def run(capsys):
    """run("train_CNN.py", "--epochs", 1, ...) -> Result, in-process."""
    return lambda script, *args: run_main(script, *args, capsys=capsys)


def made_once(tmp_path_factory, worker_id, name, make):
    """A folder filled by make(folder) once per test run: pytest-xdist's workers share it, the first
    to ask makes it (under a lock) and the others wait for it, as pytest-xdist's docs show."""
    if worker_id == "master":  # one process (-n 0): nothing to share
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder
    root = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, worker_id):
    return made_once(tmp_path_factory, worker_id, "dataset", make_dataset)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, worker_id, dataset):
    """One small training run, shared by the tests that need model.h5 and weights.h5: in-process,
    with what it printed kept in a Result (in printed.json, for the other workers)."""
    def train(folder):
        import train_CNN

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = train_CNN.main([str(arg) for arg in ("--data", dataset, "--output", folder / "run", "--arch", "logistic",
                                                        "--epochs", 1, "--image-size", 32)])
        (folder / "printed.json").write_text(json.dumps([code, out.getvalue(), err.getvalue()]))

    folder = made_once(tmp_path_factory, worker_id, "trained", train)
    result = Result(*json.loads((folder / "printed.json").read_text()))
    assert result.returncode == 0, result.stderr
    return folder / "run", result


# pytest-xdist hands out whole files (--dist loadfile) in collection order: the slowest go first, so
# that none of them starts last while the other cores sit idle (pytest.ini: --no-loadscope-reorder).
SLOWEST_FIRST = ["test_resume_fine_tune.py", "test_readme.py", "test_interrupt.py", "test_features.py", "test_distribute.py",
                 "test_shared_dataset.py", "test_train_cli.py", "test_shipped_model.py", "test_odd_files.py",
                 "test_run_folders.py", "test_write_failures.py"]


def pytest_collection_modifyitems(items):
    def rank(item):
        return SLOWEST_FIRST.index(item.path.name) if item.path.name in SLOWEST_FIRST else len(SLOWEST_FIRST)
    items.sort(key=rank)  # a stable sort: each file's tests keep their order
