"""One read per photo: training's photo check and serve.py's latency per upload, before and after.

    python benchmarks/photo_reads.py                     # 2,400 + 600 shared photos, 100 uploads
    python benchmarks/photo_reads.py --photos 600 --uploads 30 --repeats 1   # a quick look

Before (the package at --before, commit a1f651e by default, extracted with `git archive` and
imported beside today's as `classifier_before`), a photo was read up to four times before the
first epoch: Pillow's decode, a second read for TensorFlow's trial decode, a third for
quick_check's hash and header, then tf.data's decode. serve.py wrote each upload to a temporary
file to read it back. Now images.check_photo reads the bytes once (a file's or an upload's).

It prints, side by side, for the same photos in the same process:
- the photo check that starts every training run (data.labelled_samples on Training_Set and
  Test_Set, then check.quick_check): seconds of each (median of --repeats, before and after
  alternating) and the files opened per photo;
- serve.py's latency per upload: one photo per POST /predict, one after another, in-process
  (FastAPI's TestClient, no network), with the shipped model on both engines (LiteRT when a
  fresh model.tflite is beside it, Keras with --no-compiled), before and after taking turns
  photo by photo: the median ms of server.read_photo alone (the part that changed) and of the
  whole request, and the request's p90.
The files are read once before timing (warm page cache), so the figures count the work of each
read, not the disk. Needs git and ../shared/datasets/cats_vs_dogs.
"""
import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

from common import PROJECT, linked_dataset, machine_line, quiet_tensorflow, require_shared_dataset, warm_file_cache

BEFORE = "a1f651e"  # the last commit with four reads per photo and serve.py's temporary files
VERSIONS = (("before", "classifier_before"), ("after", "classifier"))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=3000, help="shared photos checked, 4/5 Training_Set (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=288, help="the model's input side; 288 is the default model's, "
                        "where a 500x375 photo is not shrunk and TensorFlow decodes it (default: %(default)s)")
    parser.add_argument("--uploads", type=int, default=100, help="photos posted to serve.py, one per request (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="passes of the photo check per version (default: %(default)s)")
    parser.add_argument("--model", default=str(PROJECT / "model.h5"), metavar="FILE", help="served model (default: the shipped model.h5)")
    parser.add_argument("--before", default=BEFORE, metavar="COMMIT", help="the package to compare with (default: %(default)s)")
    return parser.parse_args()


def import_before(commit, workdir):
    """The package as it was at commit, importable as classifier_before (its imports are relative)."""
    archive = subprocess.run(["git", "-C", str(PROJECT), "archive", commit, "classifier"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
    shutil.move(Path(workdir, "classifier"), Path(workdir, "classifier_before"))
    sys.path.insert(0, str(workdir))
    import classifier_before
    return classifier_before


@contextmanager
def counting_opens(folder):
    """Count os.open calls on files under folder (both versions open photos with images.open_file,
    and tf.io.read_file is not used by the check)."""
    opened, real_open, root = [], os.open, str(folder)

    def counted(path, *args, **kwargs):
        if os.fsdecode(path).startswith(root):
            opened.append(path)
        return real_open(path, *args, **kwargs)
    os.open = counted
    try:
        yield opened
    finally:
        os.open = real_open


def photo_check(package, data_dir, image_size):
    """What every training run does before its first epoch, in this version of the package:
    (photos, seconds of labelled_samples on both sets, seconds of quick_check)."""
    from importlib import import_module
    data, check = import_module(f"{package}.data"), import_module(f"{package}.check")

    classes = data.check_layout(data_dir)
    started = time.perf_counter()
    train, _ = data.labelled_samples(data_dir / "Training_Set", classes, image_size)
    test, _ = data.labelled_samples(data_dir / "Test_Set", classes, image_size)
    checked = time.perf_counter()
    with redirect_stderr(io.StringIO()):  # its warnings (tiny photos...) are the same in both
        check.quick_check(train, test, classes, image_size)
    return len(train) + len(test), checked - started, time.perf_counter() - checked


def time_photo_check(data_dir, image_size, repeats):
    """{version: ([(check s, quick_check s)] of each pass, files opened per photo)}, the versions alternating."""
    results = {"before": [], "after": []}
    opens = {}
    for repeat in range(repeats):
        for version, package in (("before", "classifier_before"), ("after", "classifier"))[::1 if repeat % 2 == 0 else -1]:
            with counting_opens(data_dir.resolve()) as opened:
                count, check_seconds, quick_seconds = photo_check(package, data_dir, image_size)
            results[version].append((check_seconds, quick_seconds))
            opens[version] = len(opened) / count
    return {version: (results[version], opens[version]) for version in results}


def served(package, model_path, compiled):
    """(this version's serve.py app, its read_photo, image size), or None without a fresh model.tflite for LiteRT."""
    from importlib import import_module
    prediction, server = import_module(f"{package}.prediction"), import_module(f"{package}.server")

    with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
        model, info = prediction.load_classifier(model_path, compiled=compiled)
    if compiled and type(model).__name__ != "CompiledModel":
        return None
    app = server.create_app(model, info, model_file=model_path)
    server.warm_up(app, info.image_size)
    return app, server.read_photo, info.image_size


def upload_latencies(model_path, uploads, compiled):
    """{version: (ms of read_photo alone, ms of POST /predict)} per upload, one photo per request,
    one after another, before and after taking turns photo by photo (so both see the same load)."""
    from fastapi.testclient import TestClient

    apps = {version: served(package, model_path, compiled) for version, package in VERSIONS}
    if None in apps.values():
        return None
    times = {version: ([], []) for version in apps}
    with TestClient(apps["before"][0]) as before, TestClient(apps["after"][0]) as after:
        clients = {"before": before, "after": after}
        for index, (name, data) in enumerate(uploads[:3] + uploads):  # the first 3 only warm up
            for version in (("before", "after") if index % 2 == 0 else ("after", "before")):
                _, read_photo, size = apps[version]
                started = time.perf_counter()
                read_photo(data, name, size, 50_000_000, compiled)
                read = time.perf_counter() - started
                started = time.perf_counter()
                response = clients[version].post("/predict", files=[("file", (name, data, "image/jpeg"))])
                posted = time.perf_counter() - started
                assert response.status_code == 200, response.text
                if index >= 3:
                    times[version][0].append(read * 1000)
                    times[version][1].append(posted * 1000)
    return times


def p90(values):
    return sorted(values)[min(len(values) - 1, int(0.9 * len(values)))]


def main():
    args = parse_args()
    require_shared_dataset()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="photo-reads-") as workdir:
        workdir = Path(workdir)
        import_before(args.before, workdir)
        quiet_tensorflow()
        data_dir = linked_dataset(workdir / "data", args.photos * 4 // 5, args.photos - args.photos * 4 // 5, seed=0)
        warm_file_cache(data_dir)
        checks = time_photo_check(data_dir, args.image_size, args.repeats)
        print(f"\nTraining's photo check on {args.photos} shared photos at {args.image_size} px: labelled_samples on both sets, "
              f"then quick_check; median of {args.repeats} passes each, alternating; warm page cache")
        print(f"{'':8}{'check s':>9}{'quick_check s':>15}{'total s':>9}{'photos/s':>10}{'files opened/photo':>20}")
        totals = {}
        for version, (passes, opens) in checks.items():
            check, quick = (statistics.median(column) for column in zip(*passes))
            totals[version] = statistics.median(a + b for a, b in passes)
            print(f"{version:8}{check:>9.2f}{quick:>15.3f}{totals[version]:>9.2f}{args.photos / totals[version]:>10.0f}{opens:>20.2f}")
        print(f"after / before: {totals['after'] / totals['before']:.2f}x the time")

        test_photos = sorted((data_dir / "Test_Set").glob("*/*"))
        test_photos = test_photos[:args.uploads // 2] + test_photos[-(args.uploads - args.uploads // 2):]  # both classes
        uploads = [(path.name, path.read_bytes()) for path in test_photos]
        print(f"\nserve.py: {len(uploads)} uploads, one photo per POST /predict, one after another (in-process, no network), "
              f"before and after taking turns; {args.model}")
        print(f"{'engine':8}{'version':>9}{'read_photo median ms':>22}{'POST median ms':>16}{'POST p90 ms':>13}")
        for engine, compiled in (("LiteRT", True), ("Keras", False)):
            times = upload_latencies(args.model, uploads, compiled)
            if times is None:
                print(f"{engine:8}   (no fresh model.tflite beside the model: skipped)")
                continue
            for version, (reads, posts) in times.items():
                print(f"{engine:8}{version:>9}{statistics.median(reads):>22.2f}{statistics.median(posts):>16.2f}{p90(posts):>13.2f}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
