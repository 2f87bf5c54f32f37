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
from classifier.config import SEED, UsageError

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

def files_in(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_mirrored_on_two_cpu_devices_gives_what_one_device_gives(tmp_path, dataset, trained, run):
    from classifier.model import make_model

    single, _ = trained  # on one device
    result = subprocess.run([sys.executable, "-c", TWO_CPUS, "--data", dataset, "--output", tmp_path, *map(str, TRAIN_ARGS),
                             "--arch", "logistic", "--distribute", "mirrored", "--float32-weights"],
                            cwd=PROJECT, capture_output=True, text=True, timeout=CLUSTER_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "Distribute 'mirrored': 2 replica(s), global batch 16 (8 per replica)" in result.stdout
    assert files_in(tmp_path) == files_in(single)
    model, info = artifacts.load(tmp_path / "model.h5")
    assert [weight.shape for weight in model.weights] == [weight.shape for weight in make_model("logistic", 32, 2).weights]
    assert info.class_names == ["Cats", "Dogs"] and info.image_size == 32
    assert (tmp_path / "reports" / "training_log.csv").read_text().count("\n") == 2  # header + 1 epoch
    # The same training on one device, with the global batch as its batch: the same steps, so the same model
    # but for the augmentation, which each replica draws for itself.
    one = run("train_CNN.py", "--data", dataset, "--output", tmp_path / "one", "--epochs", 1, "--image-size", 32,
              "--batch-size", 16, "--arch", "logistic", "--float32-weights")
    assert one.returncode == 0, one.stderr
    assert_same_training(tmp_path / "model.h5", tmp_path / "one" / "model.h5", dataset / "Test_Set")


def assert_same_training(distributed, single, photos):
    """What training changed (from the seeded initial weights) differs by 2.4 % between the two (measured);
    a global batch of 8 instead of 16 changes it by 23 %, a learning rate doubled for two replicas by 95 %."""
    import keras
    import numpy as np

    from classifier.model import make_model
    from classifier.prediction import predict_files
    keras.utils.set_random_seed(SEED)  # as training.build_model seeds it: the same initial weights
    initial, _ = make_model("logistic", 32, 2).layers[-1].get_weights()
    models = [artifacts.load(path) for path in (distributed, single)]
    kernels = [model.layers[-1].get_weights()[0] for model, _ in models]
    learned = [kernel - initial for kernel in kernels]
    assert np.linalg.norm(learned[1]) > 0.05  # it learned something to compare
    assert np.linalg.norm(learned[0] - learned[1]) <= 0.1 * np.linalg.norm(learned[1])
    paths = sorted(photos.rglob("*.jpg"))
    probabilities = [np.array([row.probabilities for row in predict_files(model, info, paths, 32)]) for model, info in models]
    assert np.abs(probabilities[0] - probabilities[1]).max() <= 0.01  # measured 2.2e-3


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


def test_each_image_goes_to_exactly_one_worker_per_epoch(dataset):
    """Each worker of a cluster runs the whole training pipeline and keeps its share of every global
    batch (distribute.shard). Here for two workers in one process, with the function of TensorFlow's
    that MultiWorkerMirroredStrategy applies to each worker's copy (the cluster run above trains on it)."""
    from tensorflow.python.distribute.input_ops import auto_shard_dataset

    from classifier.data import image_dataset, labelled_samples

    samples, _ = labelled_samples(dataset / "Training_Set", ["Cats", "Dogs"], 32)

    def images_of_worker(index):  # the photos one worker trains on in each of two epochs
        pipeline = distribute.shard(image_dataset(samples, 32, 4, shuffle=True, seed=7))  # global batch: 2 per replica
        share = auto_shard_dataset(pipeline, num_shards=2, index=index, num_replicas_in_sync=2)
        return [[image.tobytes() for images, _ in share for image in images.numpy()] for _ in range(2)]

    first, second = images_of_worker(0), images_of_worker(1)
    for epoch in range(2):
        assert first[epoch] and second[epoch]  # both workers get a share
        assert len(set(first[epoch])) == len(first[epoch]) and len(set(second[epoch])) == len(second[epoch])
        assert not set(first[epoch]) & set(second[epoch])
        assert len(first[epoch]) + len(second[epoch]) == len(samples) == 2 * 12  # the dataset fixture: 12 a class
    assert first[0] != first[1]  # reshuffled each epoch, alike on every worker


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
