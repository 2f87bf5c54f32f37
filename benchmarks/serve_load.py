"""serve.py under load: N clients posting photos at once, against one client posting the same photos one at a time.

    python benchmarks/serve_load.py                       # 8 clients x 12 requests, the shipped model.h5
    python benchmarks/serve_load.py --clients 16 --requests 4 --model runs/cnn/model.h5

It starts serve.py itself on a free port of 127.0.0.1 (loopback only), sends every photo once per
mode, stops the server with SIGTERM and prints one row per mode: latency p50/p99, images/s, the
server's resident memory, its model calls (how well requests were batched) and the errors, which
must be 0. Photos: a sample of ../shared/datasets/cats_vs_dogs/Test_Set read from there (never
copied), else JPEGs generated with Pillow. The count is bounded by --clients x --requests and the
time by --time-limit: clients stop sending when it has passed.
"""
import argparse
import io
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from common import PROJECT, SHARED_DATASET, machine_line, sample_photos

HOST = "127.0.0.1"  # loopback only: the benchmark never listens on a reachable address


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="clients sending at once (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=12, help="requests per client, one photo each (default: %(default)s)")
    parser.add_argument("--model", default=str(PROJECT / "model.h5"), metavar="FILE", help="model to serve (default: the shipped model.h5)")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="serve.py --batch-size (default: %(default)s)")
    parser.add_argument("--batch-wait-ms", type=float, default=5, metavar="MS", help="serve.py --batch-wait-ms (default: %(default)s)")
    parser.add_argument("--time-limit", type=float, default=300, metavar="S",
                        help="seconds after which each mode stops sending (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="which photos are sampled (default: %(default)s)")
    parser.add_argument("--no-compiled", action="store_true", help="serve.py --no-compiled: Keras instead of LiteRT")
    args = parser.parse_args()
    if args.clients < 1 or args.requests < 1:
        parser.error("--clients and --requests must be at least 1")
    return args


def photos(count, seed):
    """[(name, JPEG bytes)]: shared Test_Set photos when the folder is there, else generated ones."""
    test_set = SHARED_DATASET / "Test_Set"
    if test_set.is_dir():
        chosen = sample_photos(test_set, count, seed)
        return [(path.name, path.read_bytes()) for paths in chosen.values() for path in paths], f"{count} photos from {test_set}"
    from PIL import Image
    rng = np.random.default_rng(seed)
    made = []
    for index in range(count):  # the size of a typical Test_Set photo, one noisy colour each
        pixels = np.clip(rng.normal(rng.integers(0, 256, 3), 40, size=(375, 500, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        made.append((f"generated-{index}.jpg", buffer.getvalue()))
    return made, f"{count} generated 500x375 JPEGs ({test_set} not found)"


def start_server(args, log):
    """serve.py on a free port of 127.0.0.1 (--port 0: it prints the one it got); returns (process, URL)."""
    import httpx

    process = subprocess.Popen([sys.executable, str(PROJECT / "serve.py"), "--host", HOST, "--port", "0", "--model", args.model,
                                "--batch-size", str(args.batch_size), "--batch-wait-ms", str(args.batch_wait_ms)]
                               + (["--no-compiled"] if args.no_compiled else []),
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"error: serve.py exited with {process.returncode} before answering; its log: {log.name}")
        started = re.findall(r"Serving on (http://\S+?)/ ", Path(log.name).read_text())
        try:
            if started and httpx.get(f"{started[0]}/health", timeout=2).status_code == 200:
                return process, started[0]
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    process.kill()
    sys.exit(f"error: serve.py did not answer /health within 180 s; its log: {log.name}")


def memory_mb(pid):
    """(resident now, peak resident) of a process in MB, from /proc (Linux); (nan, nan) elsewhere."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return float("nan"), float("nan")


def run_clients(url, shares, time_limit):
    """Each share is one client's photos, sent one request at a time. Returns (latencies, errors, wall seconds)."""
    import httpx

    latencies, errors, lock = [], [], threading.Lock()
    deadline = time.monotonic() + time_limit

    def client(share):
        with httpx.Client(base_url=url, timeout=60) as session:
            for name, data in share:
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                try:
                    response = session.post("/predict", files={"file": (name, data, "image/jpeg")})
                    failed = None if response.status_code == 200 else f"{name}: {response.status_code} {response.text[:200]}"
                except httpx.HTTPError as error:
                    failed = f"{name}: {type(error).__name__}: {error}"
                with lock:
                    latencies.append(time.perf_counter() - started)
                    if failed:
                        errors.append(failed)

    started = time.perf_counter()
    with ThreadPoolExecutor(len(shares)) as pool:
        list(pool.map(client, shares))
    return latencies, errors, time.perf_counter() - started


def model_calls(url):
    import httpx
    health = httpx.get(f"{url}/health", timeout=10).json()
    return health["model_calls"], health["images_labelled"]


def measure(url, pid, mode, shares, time_limit):
    calls_before, images_before = model_calls(url)
    latencies, errors, wall = run_clients(url, shares, time_limit)
    calls, images = (after - before for after, before in zip(model_calls(url), (calls_before, images_before)))
    rss, peak = memory_mb(pid)
    milliseconds = np.array(latencies) * 1000
    return {"mode": mode, "clients": len(shares), "requests": len(latencies),
            "p50 ms": np.percentile(milliseconds, 50), "p99 ms": np.percentile(milliseconds, 99),
            "images/s": len(latencies) / wall, "model calls": calls, "photos/call": images / max(1, calls),
            "RSS MB": rss, "peak RSS MB": peak, "errors": len(errors)}, errors


def print_table(rows):
    columns = list(rows[0])
    cells = [[f"{row[name]:.1f}" if isinstance(row[name], float) else str(row[name]) for name in columns] for row in rows]
    widths = [max(len(name), *(len(line[index]) for line in cells)) for index, name in enumerate(columns)]
    print("  ".join(name.rjust(width) for name, width in zip(columns, widths)))
    for line in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths)))


def stop(process):
    """SIGTERM, as a service manager sends it; returns (exit code, seconds it took to exit)."""
    started = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    return code, time.perf_counter() - started


def main():
    args = parse_args()
    print(machine_line())
    sample, source = photos(args.clients * args.requests, args.seed)
    print(f"Photos: {source}; model: {args.model}; serve.py --batch-size {args.batch_size} --batch-wait-ms {args.batch_wait_ms:g}")
    with tempfile.NamedTemporaryFile("w+", prefix="serve-log-", suffix=".txt", delete=False) as log:
        started = time.perf_counter()
        process, url = start_server(args, log)
        ready = time.perf_counter() - started
        try:
            run_clients(url, [sample[:1]], args.time_limit)
            resident, _ = memory_mb(process.pid)
            print(f"serve.py answered /health {ready:.1f} s after it was started; resident memory after one photo: "
                  f"{resident:.0f} MB (goal: at most 350)")
            run_clients(url, [sample[:4]], args.time_limit)  # warm-up: the first requests build TensorFlow's functions
            rows, errors = [], []
            for mode, shares in (("one client, one at a time", [sample]),
                                 (f"{args.clients} clients at once", [sample[index::args.clients] for index in range(args.clients)])):
                row, failed = measure(url, process.pid, mode, shares, args.time_limit)
                rows.append(row)
                errors += failed
        finally:
            code, seconds = stop(process)
    print_table(rows)
    print(f"Server stopped by SIGTERM in {seconds:.1f} s with exit code {code}; its log: {log.name}")
    for error in errors[:10]:
        print(f"error: {error}")
    if rows[0]["requests"] < len(sample) or rows[1]["requests"] < len(sample):
        print(f"note: --time-limit {args.time_limit:g} s reached before every photo was sent")
    return 1 if errors or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
