"""Choose the tf.distribute strategy for this process and the paths each worker writes to."""

import json
import logging
import os
import tempfile

import tensorflow as tf

logger = logging.getLogger(__name__)


class DistributeError(RuntimeError):
    """The requested device layout cannot be set up."""


def cluster_size() -> int:
    """Return the number of chief and worker tasks named in TF_CONFIG (0 without TF_CONFIG)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return 0
    try:
        cluster = json.loads(text).get("cluster", {})
    except json.JSONDecodeError as error:
        raise DistributeError(f"TF_CONFIG is not valid JSON: {error}") from None
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def make_strategy(cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """Return the strategy for this process.

    With TF_CONFIG naming two or more chief/worker tasks: MultiWorkerMirroredStrategy
    over every GPU of every machine (the CPU where a machine has none).
    Otherwise: MirroredStrategy over every visible GPU, or over the CPU when
    there is none. With no GPU and cpu_replicas > 1, the CPU is split into
    that many logical devices and mirrored over, which runs the same
    all-reduce path as several GPUs. Logical devices must be configured
    before TensorFlow initializes its runtime, so call this first.
    """
    # Logged by its public name: MultiWorkerMirroredStrategy's class is
    # CollectiveAllReduceStrategy.
    name = "MirroredStrategy"
    if cluster_size() > 1:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        name = "MultiWorkerMirroredStrategy"
    elif tf.config.list_physical_devices("GPU") or cpu_replicas <= 1:
        strategy = tf.distribute.MirroredStrategy()
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(cpu_replicas)]
            )
        except RuntimeError as error:
            raise DistributeError(
                f"cannot split the CPU into {cpu_replicas} logical devices after TensorFlow "
                f"has initialized ({error}); set train.cpu_replicas in a fresh process"
            ) from None
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    logger.info(
        "Using %s with %d replica(s) in sync; this worker's devices: %s",
        name,
        strategy.num_replicas_in_sync,
        ", ".join(strategy.extended.worker_devices),
    )
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Return whether this worker writes the real checkpoints, export and metrics."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_path(path: str, chief: bool) -> str:
    """Return `path` for the chief and a fresh temporary folder for every other worker.

    Under MultiWorkerMirroredStrategy every worker must take part in saving,
    because saving runs collective operations, but only the chief's copy may
    land in the real location.
    """
    if chief:
        return path
    return tempfile.mkdtemp(prefix="pairtrain-worker-")
