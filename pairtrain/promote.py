"""Promote a newly trained model to the serving folder only when it scores better.

The candidate and the model now served are scored on the same labelled file,
each read with the config saved with it unless a config is given, so their
metrics are comparable. A promoted model is
copied into the serving folder as a new numbered version, which TensorFlow
Serving picks up as the newest one; older versions stay for rollback.
"""

import datetime
import json
import logging
import os

import tensorflow as tf

from pairtrain import scoring
from pipeline import read
from trainer import export

logger = logging.getLogger(__name__)

METRICS = ("accuracy", "precision", "recall", "f1", "auc")
PROMOTIONS_FILE = "promotions.jsonl"


def _copy_tree(source: str, target: str) -> None:
    for root, _, files in tf.io.gfile.walk(source):
        relative = os.path.relpath(root, source)
        destination = os.path.normpath(os.path.join(target, relative))
        tf.io.gfile.makedirs(destination)
        for name in files:
            tf.io.gfile.copy(os.path.join(root, name), os.path.join(destination, name), overwrite=True)


def promote(
    candidate_dir: str,
    serving_dir: str,
    input_pattern: str,
    metric: str = "auc",
    min_improvement: float = 0.0,
    config_path: str | None = None,
    overrides=(),
) -> dict:
    """Score the candidate and the served model; copy the candidate into serving_dir if it is better.

    "Better" means the candidate's `metric` exceeds the served model's by more
    than `min_improvement`. With no served model yet, the candidate is
    promoted. Returns the decision record, which is also appended to
    serving_dir/promotions.jsonl.
    """
    if metric not in METRICS:
        raise ValueError(f"invalid metric {metric!r}; expected one of {', '.join(METRICS)}")
    candidate = scoring.evaluate(candidate_dir, input_pattern, config_path, overrides)
    try:
        current_version = export.latest_version_dir(serving_dir)
    except FileNotFoundError:
        current_version = None
    current = scoring.evaluate(current_version, input_pattern, config_path, overrides) if current_version else None

    candidate_score = candidate[metric]
    current_score = current[metric] if current else None
    if candidate_score is None:
        raise read.InputError(f"the candidate's {metric} is undefined on {input_pattern}; use a file with both labels")
    promoted = current_score is None or candidate_score > current_score + min_improvement
    record = {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "input": input_pattern,
        "metric": metric,
        "min_improvement": min_improvement,
        "candidate": {"model": candidate["model"], metric: candidate_score},
        "current": {"model": current_version, metric: current_score} if current else None,
        "promoted": promoted,
    }
    if promoted:
        version = export.next_version(serving_dir)
        temp_dir = os.path.join(serving_dir, f".tmp-{version}")
        _copy_tree(candidate["model"], temp_dir)
        final_dir = os.path.join(serving_dir, str(version))
        tf.io.gfile.rename(temp_dir, final_dir)
        record["promoted_to"] = final_dir
        logger.info("Promoted %s to %s (%s %s vs %s)", candidate["model"], final_dir, metric, candidate_score, current_score)
    else:
        logger.info(
            "Kept %s: the candidate's %s %.4f is not above %.4f + %s", current_version, metric,
            candidate_score, current_score, min_improvement,
        )
    tf.io.gfile.makedirs(serving_dir)
    with tf.io.gfile.GFile(os.path.join(serving_dir, PROMOTIONS_FILE), "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    return record
