"""Score raw pair files with an exported SavedModel: `pairtrain evaluate` and `pairtrain predict`.

Both read the input format from the config saved with the model unless a
config is given, and feed raw strings to the model's serving signature, so
they use exactly the tokenization and vocabulary the model was trained with.
"""

import logging
from typing import Iterator

import numpy as np
import tensorflow as tf

from pairtrain import config as config_lib
from pairtrain import io_utils
from pipeline import features, read
from trainer import export
from trainer.metrics import classification_metrics

logger = logging.getLogger(__name__)

BATCH_SIZE = 1024


def load_model(model_dir: str):
    """Load the newest version under model_dir; return (loaded SavedModel, version folder, saved config)."""
    version_dir = export.latest_version_dir(model_dir)
    logger.info("Loading %s", version_dir)
    loaded = tf.saved_model.load(version_dir)
    return loaded, version_dir, export.load_saved_config(version_dir)


def resolve_config(saved: dict, config_path: str | None, overrides: list[str]) -> config_lib.Config:
    if config_path:
        return config_lib.load(config_path, overrides)
    return config_lib.build(saved["config"], overrides)


def _probabilities(loaded, pairs: list[dict]) -> np.ndarray:
    signature = loaded.signatures[export.TEXT_SIGNATURE]
    results = []
    for start in range(0, len(pairs), BATCH_SIZE):
        chunk = pairs[start : start + BATCH_SIZE]
        output = signature(
            text_a=tf.constant([pair[features.TEXT_A] for pair in chunk]),
            text_b=tf.constant([pair[features.TEXT_B] for pair in chunk]),
        )
        results.append(output["probability"].numpy())
    return np.concatenate(results) if results else np.zeros(0, np.float32)


def _parse_all(config: config_lib.Config, pattern: str, require_label: bool) -> Iterator[tuple[str, dict]]:
    parser = read.RecordParser(config, require_label=require_label)
    for path in read.expand_patterns([pattern], "input"):
        yield from parser.parse_file(path)


def evaluate(model_dir: str, input_pattern: str, config_path: str | None = None, overrides=()) -> dict:
    """Return metrics of the model on a labelled raw file; rejected records are counted."""
    loaded, version_dir, saved = load_model(model_dir)
    config = resolve_config(saved, config_path, list(overrides))
    pairs, rejected = [], {}
    for outcome, record in _parse_all(config, input_pattern, require_label=True):
        if outcome == read.OK:
            pairs.append(record)
        else:
            rejected[record["reason"]] = rejected.get(record["reason"], 0) + 1
            logger.warning("Skipping %s line %d: %s", record[read.SOURCE_KEY], record[read.LINE_KEY], record["detail"])
    if not pairs:
        raise read.InputError(f"no labelled pair could be read from {input_pattern}")
    probabilities = _probabilities(loaded, pairs)
    labels = [pair[features.LABEL] for pair in pairs]
    result = classification_metrics(labels, probabilities, config.train.threshold)
    result.update({"model": version_dir, "input": input_pattern, "rejected": rejected})
    return result


def predict(model_dir: str, input_pattern: str, output_path: str, config_path: str | None = None, overrides=()) -> int:
    """Write one probability per input pair, in input order, and return the number written.

    Raises read.InputError naming the file and line of the first record that
    is not a pair, because skipping it would misalign the output rows.
    """
    loaded, _, saved = load_model(model_dir)
    config = resolve_config(saved, config_path, list(overrides))
    pairs = []
    for outcome, record in _parse_all(config, input_pattern, require_label=False):
        if outcome != read.OK:
            raise read.InputError(
                f"{record[read.SOURCE_KEY]}, line {record[read.LINE_KEY]}: {record['reason']}: "
                f"{record['detail']}; fix the record so every output row matches an input pair"
            )
        pairs.append(record)
    probabilities = _probabilities(loaded, pairs)
    lines = ["probability"] + [f"{value:.6f}" for value in probabilities]
    io_utils.write_text(output_path, "\n".join(lines) + "\n")
    logger.info("Wrote %d probabilities to %s", len(pairs), output_path)
    return len(pairs)
