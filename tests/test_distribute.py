"""train_CNN.py --distribute without a GPU: two replicas on two logical CPU devices (mirrored), and a
cluster of two worker processes on 127.0.0.1 (multiworker)."""
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack

import pytest

from conftest import PROJECT

from classifier import artifacts, distribute
from classifier.config import UsageError

TRAIN_ARGS = ("--epochs", 1, "--image-size", 32, "--batch-size", 8)
CLUSTER_TIMEOUT = 240  # seconds for a whole cluster run: a bound against a hang, not a speed test

# Logical devices can only be configured before TensorFlow initialises, so in a fresh Python.
TWO_CPUS = """
import sys
from classifier import import_tensorflow
tf = import_tensorflow()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import train_CNN
sys.exit(train_CNN.main(sys.argv[1:]))
"""

# One worker of a cluster reading the real training pipeline: which images does it get each epoch?
SHARD_PROBE = """
import hashlib, json, sys
from classifier import distribute
strategy = distribute.make_strategy("multiworker")
from classifier.data import image_dataset, labelled_samples
samples, _ = labelled_samples(sys.argv[1], ["Cats", "Dogs"], 32)
dataset = image_dataset(samples, 32, 2 * strategy.num_replicas_in_sync, shuffle=True, seed=7)
batches = strategy.experimental_distribute_dataset(distribute.shard(dataset))
for epoch in range(2):
    seen = [hashlib.sha1(image.numpy().tobytes()).hexdigest()
            for images, _ in batches for local in strategy.experimental_local_results(images) for image in local]
    print(json.dumps(seen))
"""


def files_in(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_mirrored_on_two_cpu_devices_gives_what_one_device_gives(tmp_path, dataset, trained):
    from classifier.model import make_model

    single, _ = trained  # one device (the cnn: the files a run writes are the same for every model)
    result = subprocess.run([sys.executable, "-c", TWO_CPUS, "--data", dataset, "--output", tmp_path, *map(str, TRAIN_ARGS),
                             "--arch", "logistic", "--distribute", "mirrored"], cwd=PROJECT, capture_output=True, text=True, timeout=CLUSTER_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "Distribute 'mirrored': 2 replica(s), global batch 16 (8 per replica)" in result.stdout
    assert files_in(tmp_path) == files_in(single)
    model, info = artifacts.load(tmp_path / "model.h5")
    assert [weight.shape for weight in model.weights] == [weight.shape for weight in make_model("logistic", 32, 2).weights]
    assert info.class_names == ["Cats", "Dogs"] and info.image_size == 32
    assert (tmp_path / "reports" / "training_log.csv").read_text().count("\n") == 2  # header + 1 epoch


def free_ports(count):
    """Ports nobody listens on now, on the loopback interface only."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [each.getsockname()[1] for each in sockets]


def run_cluster(tmp_path, argv_of_worker, workers=2):
    """Start one process per worker with its TF_CONFIG; wait for all (bounded); always kill them all.

    Output goes to files, not pipes: a worker blocked on a full pipe would stall the whole cluster.
    Returns [(exit code, stdout, stderr)] by worker index.
    """
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes, logs = [], []
    try:
        for index in range(workers):
            tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
            scratch = tmp_path / f"tmp{index}"
            scratch.mkdir()
            env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TMPDIR=str(scratch))
            out, err = open(tmp_path / f"out{index}.txt", "w+"), open(tmp_path / f"err{index}.txt", "w+")
            logs.append((out, err))
            processes.append(subprocess.Popen([sys.executable, *map(str, argv_of_worker(index))], cwd=PROJECT,
                                              env=env, stdout=out, stderr=err, text=True))
        deadline = time.monotonic() + CLUSTER_TIMEOUT
        for process in processes:
            process.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for process in processes:
            process.kill()
            process.wait()
    results = []
    for process, (out, err) in zip(processes, logs):
        out.seek(0), err.seek(0)
        results.append((process.returncode, out.read(), err.read()))
        out.close(), err.close()
    return results


def test_multiworker_trains_and_only_the_chief_writes(tmp_path, dataset):
    outputs = [tmp_path / "chief-output", tmp_path / "worker-output"]
    for folder in outputs:
        folder.mkdir()
    results = run_cluster(tmp_path, lambda index: [
        PROJECT / "train_CNN.py", "--data", dataset, "--output", outputs[index], *TRAIN_ARGS,
        "--arch", "logistic", "--distribute", "multiworker"])
    for code, out, err in results:
        assert code == 0, out + err
        assert "Distribute 'multiworker': 2 replica(s), global batch 16 (8 per replica)" in out
    assert {"model.h5", "weights.h5", "reports/training_log.csv"} <= set(files_in(outputs[0]))
    assert not (outputs[0] / "checkpoint").exists()
    assert list(outputs[1].iterdir()) == []  # the other worker wrote nothing into its --output
    assert "Worker 1 of a 2-worker cluster" in results[1][1]
    assert not list((tmp_path / "tmp1").glob("classifier-worker-*"))  # and removed its scratch folder
    # Both workers report the same accuracy: the Test_Set metrics are summed across the cluster.
    accuracies = [line for _, out, _ in results for line in out.splitlines() if line.startswith("Test_Set accuracy:")]
    assert len(accuracies) == 2 and accuracies[0].split("(")[0] == accuracies[1].split("(")[0]


def test_each_image_goes_to_exactly_one_worker_per_epoch(tmp_path, dataset):
    results = run_cluster(tmp_path, lambda index: ["-c", SHARD_PROBE, dataset / "Training_Set"])
    for code, out, err in results:
        assert code == 0, out + err
    epochs = [[json.loads(line) for line in out.splitlines()] for _, out, _ in results]
    every_image = 2 * 12  # the dataset fixture: 12 training photos per class
    for epoch in range(2):
        first, second = epochs[0][epoch], epochs[1][epoch]
        assert first and second  # both workers get a share
        assert len(set(first)) == len(first) and len(set(second)) == len(second)
        assert not set(first) & set(second)
        assert len(first) + len(second) == every_image


def test_multiworker_without_tf_config_is_one_clear_error(tmp_path, dataset, run, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = run("train_CNN.py", "--data", dataset, "--output", tmp_path, "--distribute", "multiworker")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "TF_CONFIG" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_resume_is_refused_with_multiworker(run):
    result = run("train_CNN.py", "--distribute", "multiworker", "--resume")
    assert result.returncode == 2 and "--resume does not work with --distribute multiworker" in result.stderr


@pytest.mark.parametrize("tf_config, chief", [
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
])
def test_the_chief_is_the_chief_task_else_worker_0(monkeypatch, tf_config, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.is_chief("multiworker") is chief
    assert distribute.is_chief("mirrored") is True


@pytest.mark.parametrize("text, message", [
    ("{not json", "TF_CONFIG must be JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG must be JSON"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "index 3 is out of range"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "'ps' is not supported"),
])
def test_bad_tf_config_is_a_usage_error(monkeypatch, text, message):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(UsageError, match=message):
        distribute.is_chief("multiworker")
