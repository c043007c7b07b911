"""Measure training speed of the pair model under the trainer's distribution strategy.

Usage (from the repository root, after `make install`):

    .venv/bin/python bench/train_speed.py [--steps 300] [--batch-per-replica 256] [--require-gpu]

Trains the real model (trainer.model) on random ids with the strategy the
trainer would pick: MirroredStrategy over every visible GPU, or the CPU. It
needs no data files, so it suits a short check on a machine with GPUs. Prints
the device list, the replica count and examples per second after a warm-up.
With --require-gpu it exits with status 1 when no GPU is visible.
"""

import argparse
import json
import sys
import time

import numpy as np
import tensorflow as tf

from trainer.distribute import make_strategy
from trainer.model import build_model, compile_model
from pipeline import features


def synthetic_dataset(vocab_size: int, length: int, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    rng = np.random.default_rng(seed)
    count = batch_size * 8
    ids_a = rng.integers(features.RESERVED_IDS, vocab_size, size=(count, length))
    ids_b = rng.integers(features.RESERVED_IDS, vocab_size, size=(count, length))
    labels = rng.integers(0, 2, size=(count, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(({features.TEXT_A_IDS: ids_a, features.TEXT_B_IDS: ids_b}, labels))
    return dataset.batch(batch_size).repeat().prefetch(tf.data.AUTOTUNE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first")
    parser.add_argument("--batch-per-replica", type=int, default=256)
    parser.add_argument("--length", type=int, default=32, help="tokens per text")
    parser.add_argument("--require-gpu", action="store_true")
    args = parser.parse_args()

    gpus = tf.config.list_physical_devices("GPU")
    if args.require_gpu and not gpus:
        print("no GPU is visible to TensorFlow", file=sys.stderr)
        return 1
    strategy = make_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = args.batch_per_replica * replicas
    with strategy.scope():
        model = build_model(vocab_size=2000, embedding_dim=128)
        compile_model(model, learning_rate=0.001)
    dataset = synthetic_dataset(2000, args.length, global_batch)

    model.fit(dataset, steps_per_epoch=args.warmup, epochs=1, verbose=0)
    started = time.monotonic()
    history = model.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=0)
    seconds = time.monotonic() - started
    result = {
        "gpus": [gpu.name for gpu in gpus],
        "devices": list(strategy.extended.worker_devices),
        "replicas": replicas,
        "global_batch_size": global_batch,
        "steps": args.steps,
        "seconds": round(seconds, 2),
        "examples_per_second": round(args.steps * global_batch / seconds),
        "final_loss": float(history.history["loss"][-1]),
        "tensorflow": tf.__version__,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
