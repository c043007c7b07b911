"""Choose the tf.distribute strategy for this process."""

import logging

import tensorflow as tf

logger = logging.getLogger(__name__)


class DistributeError(RuntimeError):
    """The requested device layout cannot be set up."""


def make_strategy(cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """Return a MirroredStrategy over every visible GPU, or over the CPU when there is none.

    With no GPU and cpu_replicas > 1, the CPU is split into that many logical
    devices and the strategy mirrors over them, which exercises the same
    all-reduce code path as several GPUs. Logical devices must be configured
    before TensorFlow initializes its runtime, so call this first.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if gpus or cpu_replicas <= 1:
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
        "Using %s with %d replica(s): %s",
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        ", ".join(strategy.extended.worker_devices),
    )
    return strategy
