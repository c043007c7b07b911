"""Train, evaluate and export the pair model on a finished preprocessing run."""

import datetime
import hashlib
import importlib.metadata
import json
import logging
import os
import sys

import numpy as np
import tensorflow as tf

from pairtrain import config as config_lib
from pairtrain.config import Config
from trainer import export, metrics
from trainer.data import DataError, PreprocessedData
from trainer.distribute import is_chief, make_strategy, worker_path
from trainer.keras import keras
from trainer.model import build_model, compile_model

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PACKAGES = ("pairtrain", "tensorflow", "tf_keras", "tensorflow-transform", "apache-beam", "numpy")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class _StepCounter(keras.callbacks.Callback):
    """Record how many optimizer steps each epoch ran.

    Reads the optimizer's iteration count at epoch boundaries instead of
    counting batches, so it adds no per-batch work.
    """

    def __init__(self):
        super().__init__()
        self.steps_per_epoch: list[int] = []
        self._start = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = int(self.model.optimizer.iterations.numpy())

    def on_epoch_end(self, epoch, logs=None):
        self.steps_per_epoch.append(int(self.model.optimizer.iterations.numpy()) - self._start)


def _check_split_sizes(data: PreprocessedData, replicas: int) -> None:
    for split in ("train", "validation", "eval"):
        count = data.num_examples(split)
        if 0 < count < replicas or (split == "train" and count == 0):
            raise DataError(
                f"the {split} split has {count} example(s) but training runs on {replicas} replicas; "
                "each replica needs at least one example. Add data, or train on fewer devices "
                "(train.cpu_replicas, CUDA_VISIBLE_DEVICES)"
            )


def _with_data_settings(config: Config, data: PreprocessedData) -> Config:
    """Return `config` with the input and preprocess sections the data was made with.

    Those settings are fixed once the data exists, and the exported model must
    carry the input format that evaluate and predict will read. A difference
    from the given config is logged, not applied.
    """
    made_with = data.summary.get("config")
    if not made_with:
        return config
    requested = config.to_dict()
    for section in ("input", "preprocess"):
        changed = sorted(key for key, value in requested[section].items() if made_with[section].get(key) != value)
        if changed:
            logger.warning(
                "Ignoring %s settings that differ from those %s was made with: %s",
                section,
                data.data_dir,
                ", ".join(f"{section}.{key}" for key in changed),
            )
    return config_lib.build({**requested, "input": made_with["input"], "preprocess": made_with["preprocess"]})


def predict_probabilities(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Return (labels, probabilities) over a (features, label) dataset, in dataset order."""
    labels, probabilities = [], []
    for inputs, label in dataset:
        probabilities.append(model(inputs, training=False).numpy().reshape(-1))
        labels.append(label.numpy().reshape(-1))
    if not labels:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(labels), np.concatenate(probabilities)


def train_and_evaluate(config: Config, data_dir: str, output_dir: str, strategy=None, extra_callbacks=()) -> dict:
    """Train on data_dir's train split, score its eval split, export, and write metrics.json.

    `extra_callbacks` are Keras callbacks added to the trainer's own. Returns
    the metrics record. The trained Keras model is attached under the
    "model" key and is not written to metrics.json.
    """
    settings = config.train
    strategy = strategy or make_strategy(settings.cpu_replicas)
    chief = is_chief(strategy)
    data = PreprocessedData(data_dir)
    config = _with_data_settings(config, data)
    replicas = strategy.num_replicas_in_sync
    _check_split_sizes(data, replicas)
    global_batch = settings.batch_size_per_replica * replicas
    logger.info(
        "Batch size %d per replica, %d global over %d replica(s); vocab_size %d from %s",
        settings.batch_size_per_replica,
        global_batch,
        replicas,
        data.vocab_size,
        data_dir,
    )
    keras.utils.set_random_seed(settings.seed)

    with strategy.scope():
        model = build_model(data.vocab_size, settings.embedding_dim)
        compile_model(model, settings.learning_rate)
    embedding = model.get_layer("shared_embedding")
    if embedding.input_dim != data.vocab_size:
        raise DataError(f"embedding input_dim {embedding.input_dim} != vocab_size {data.vocab_size}")
    model.summary(print_fn=logger.info)

    train_ds = data.dataset(
        "train",
        global_batch,
        shuffle=True,
        seed=settings.seed,
        shuffle_buffer=settings.shuffle_buffer,
        shard_by=settings.shard_by,
    )
    has_validation = data.num_examples("validation") > 0
    validation_ds = data.dataset("validation", global_batch, shard_by=settings.shard_by) if has_validation else None

    # Keras' ModelCheckpoint and TensorBoard callbacks already send non-chief
    # workers' files to temporary folders under MultiWorkerMirroredStrategy.
    tf.io.gfile.makedirs(output_dir)
    checkpoint_path = os.path.join(output_dir, "checkpoints", "best")
    step_counter = _StepCounter()
    callbacks = [
        step_counter,
        keras.callbacks.TensorBoard(log_dir=os.path.join(output_dir, "logs")),
    ]
    monitor = "val_loss" if has_validation else "loss"
    callbacks.append(
        keras.callbacks.ModelCheckpoint(
            checkpoint_path, monitor=monitor, save_best_only=True, save_weights_only=True
        )
    )
    if has_validation and settings.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=settings.early_stopping_patience, restore_best_weights=True
            )
        )
    elif not has_validation:
        logger.warning("No validation split: early stopping is off and the last epoch's weights are kept")

    callbacks.extend(extra_callbacks)
    history = model.fit(
        train_ds,
        validation_data=validation_ds,
        epochs=settings.epochs,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    history_values = {key: [float(v) for v in values] for key, values in history.history.items()}
    # EarlyStopping restores the weights of the epoch with the lowest
    # validation loss; without it the last epoch's weights are kept.
    early_stopping = has_validation and settings.early_stopping_patience > 0
    if early_stopping:
        best_epoch, selected_by = int(np.argmin(history_values["val_loss"])) + 1, "val_loss"
    else:
        best_epoch, selected_by = len(history_values["loss"]), "last epoch"

    record = {
        "data_dir": data_dir,
        "finished_at": None,
        "training": {
            "replicas": replicas,
            "devices": list(strategy.extended.worker_devices),
            "batch_size_per_replica": settings.batch_size_per_replica,
            "global_batch_size": global_batch,
            "epochs_run": len(step_counter.steps_per_epoch),
            "steps_per_epoch": step_counter.steps_per_epoch,
            "best_epoch": best_epoch,
            "selected_by": selected_by,
            "history": history_values,
        },
        "eval": None,
        "vocab_size": data.vocab_size,
        "config": config.to_dict(),
        "package_versions": package_versions(),
        "input_fingerprint": data.summary.get("input_fingerprint"),
    }
    if data.num_examples("eval"):
        labels, probabilities = predict_probabilities(model, data.dataset("eval", global_batch))
        record["eval"] = metrics.classification_metrics(labels, probabilities, settings.threshold)
        logger.info("Eval metrics: %s", _format_metrics(record["eval"]))
    else:
        logger.warning("The eval split is empty: no eval metrics")

    record["weights_sha256"] = weights_fingerprint(model)
    logger.info("Final weights fingerprint (SHA-256): %s", record["weights_sha256"])

    saved_config = {"config": config.to_dict(), "vocab_size": data.vocab_size}
    export_root = worker_path(os.path.join(output_dir, "model"), chief)
    record["model_dir"] = export.export_model(model, data.tft_output, export_root, saved_config)
    record["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    if chief:
        with tf.io.gfile.GFile(os.path.join(output_dir, METRICS_FILE), "w") as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
    else:
        tf.io.gfile.rmtree(export_root)
        record["model_dir"] = None
    record["chief"] = chief
    record["model"] = model
    return record


def weights_fingerprint(model) -> str:
    """Return a SHA-256 over the model's weights, to compare replicas and workers."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def _format_metrics(values: dict) -> str:
    keys = ("accuracy", "precision", "recall", "f1", "auc")
    return ", ".join(f"{k} {values[k]:.4f}" if values[k] is not None else f"{k} n/a" for k in keys)
