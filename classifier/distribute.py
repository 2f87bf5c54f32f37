"""Scale-out training with tf.distribute: the same run on one device, on every local GPU, or on a
cluster of machines.

    none         TensorFlow's default strategy: one GPU or the CPU
    mirrored     MirroredStrategy: one replica per local GPU (with no GPU, per CPU device: just one
                 unless TensorFlow was told to split it); one combined update every step
    multiworker  MultiWorkerMirroredStrategy: the same across the machines named in TF_CONFIG

--batch-size is per replica, so one step takes --batch-size x replicas images (the global batch).
Only the chief writes model.h5, weights.h5 and reports/. The other workers run the same callbacks
(their metrics are collective, so every worker must take the same steps), writing into a
temporary folder that is removed when they exit.
"""
import atexit
import json
import os
import shutil
import tempfile

from . import import_tensorflow
from .config import UsageError

STRATEGIES = ("none", "mirrored", "multiworker")
README_SECTION = "README, 'Training on several GPUs or machines'"


def cluster_task():
    """This machine's place in TF_CONFIG: (task type, index, cluster), checked before TensorFlow loads."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UsageError("--distribute multiworker needs the TF_CONFIG environment variable to name the cluster and this worker; "
                         f"see {README_SECTION}")
    try:
        tf_config = json.loads(text)
        cluster, task = tf_config["cluster"], tf_config["task"]
        kind, index = task["type"], int(task["index"])
        if kind not in ("chief", "worker"):
            raise UsageError(f"TF_CONFIG task type {kind!r} is not supported: MultiWorkerMirroredStrategy runs 'chief' and 'worker' tasks")
        addresses = list(cluster[kind])
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"TF_CONFIG must be JSON like {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, \"task\": "
                         f"{{\"type\": \"worker\", \"index\": 0}}}} (problem: {type(error).__name__} {error}); see {README_SECTION}")
    if not 0 <= index < len(addresses):
        raise UsageError(f"TF_CONFIG task index {index} is out of range: the cluster lists {len(addresses)} {kind} address(es)")
    return kind, index, cluster


def is_chief(strategy_name):
    """Whether this process writes the model files: always, except on the non-chief workers of a cluster.

    TensorFlow's rule: the "chief" task if the cluster has one, else worker 0.
    """
    if strategy_name != "multiworker":
        return True
    kind, index, cluster = cluster_task()
    return kind == "chief" or (index == 0 and "chief" not in cluster)


def writable_output(output_dir, strategy_name):
    """--output on the chief; a temporary folder, removed at exit, on every other worker."""
    if is_chief(strategy_name):
        return output_dir
    scratch = tempfile.mkdtemp(prefix="classifier-worker-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)  # removed when the process exits
    kind, index, cluster = cluster_task()
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    print(f"{kind.capitalize()} {index} of a {workers}-worker cluster: the chief writes the model and reports; "
          f"this worker's checkpoints go to {scratch} (removed at exit)")
    return scratch


def make_strategy(strategy_name):
    """The tf.distribute strategy. Call it before any other TensorFlow op: MultiWorkerMirroredStrategy
    configures the runtime, and waits here until every worker of TF_CONFIG has started."""
    tf = import_tensorflow()
    if strategy_name == "multiworker":
        cluster_task()  # a clear error instead of TensorFlow's, whatever the caller checked before
        return _multi_worker_strategy(tf)
    if strategy_name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()


def _multi_worker_strategy(tf):
    """MultiWorkerMirroredStrategy with the reduce() that Keras 3's fit() expects (keras-team/keras#20585).

    fit() reduces (1) the first (images, labels) batch, a pair that MirroredStrategy maps over but
    MultiWorkerMirroredStrategy does not ("Attempt to convert a value (PerReplica...)"), and (2)
    each step's scalar loss and metrics with axis=0, which a scalar does not have.
    """
    base = tf.distribute.MultiWorkerMirroredStrategy

    class Strategy(base):
        def reduce(self, reduce_op, value, axis=None):
            def one(part):
                local = part.values[0] if isinstance(part, tf.distribute.DistributedValues) else part
                scalar = getattr(local, "shape", None) is not None and local.shape.rank == 0
                return base.reduce(self, reduce_op, part, None if scalar else axis)
            return tf.nest.map_structure(one, value)

    return Strategy()


def shard(dataset):
    """Split the batches between workers: each image is seen once per epoch across the cluster.

    AutoShardPolicy.DATA: every worker runs the whole (cached) pipeline and keeps its share of each
    global batch. (The FILE policy would give each worker whole files, but the pipeline starts
    from a list of checked samples, not from files TensorFlow can hand out.) The shuffle has a
    fixed seed, so all workers agree on the order they split. One machine ignores the option.
    """
    tf = import_tensorflow()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def global_batch_size(strategy, strategy_name, batch_size):
    """The images one step takes across all replicas: --batch-size on each (the datasets yield global batches)."""
    replicas = strategy.num_replicas_in_sync
    if strategy_name != "none":
        print(f"Distribute '{strategy_name}': {replicas} replica(s), global batch {batch_size * replicas} ({batch_size} per replica)")
    return batch_size * replicas

