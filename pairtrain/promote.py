"""Promote a newly trained model to the serving folder only when it scores better.

The candidate and the model now served are scored on the same labelled file.
Each model reads it with its own saved config unless a config is given. Give
one when the two models were trained with different label rules or
thresholds, so that both are scored alike. A promoted model is
copied into the serving folder as a new numbered version, which TensorFlow
Serving picks up as the newest one; older versions stay for rollback.
"""

import datetime
import json
import logging
import os

import tensorflow as tf

from pairtrain import io_utils, scoring
from pipeline import read
from pipeline.job import fingerprint
from trainer import export

logger = logging.getLogger(__name__)

METRICS = ("accuracy", "precision", "recall", "f1", "auc")
PROMOTIONS_FILE = "promotions.jsonl"


def _copy_tree(source: str, target: str) -> None:
    """Copy a folder with tf.io.gfile, writing saved_model.pb last, so a poller finds the model only when complete."""
    # Paths are joined as strings: os.path.normpath would turn gs://b into gs:/b.
    source = source.rstrip("/")
    deferred = []
    for root, _, files in tf.io.gfile.walk(source):
        relative = root.rstrip("/")[len(source) :].lstrip("/")
        destination = f"{target.rstrip('/')}/{relative}" if relative else target
        tf.io.gfile.makedirs(destination)
        for name in files:
            pair = (f"{root.rstrip('/')}/{name}", f"{destination}/{name}")
            if name == "saved_model.pb":
                deferred.append(pair)
            else:
                tf.io.gfile.copy(*pair, overwrite=True)
    for pair in deferred:
        tf.io.gfile.copy(*pair, overwrite=True)


def _install_version(model_dir: str, serving_dir: str) -> str:
    """Copy model_dir into serving_dir as a new numbered version and return its path.

    On local disk the copy goes to a temporary folder that is renamed into
    place. Object stores cannot rename a folder atomically, so there the copy
    goes straight to the version folder, with saved_model.pb written last.
    """
    version = export.next_version(serving_dir)
    final_dir = f"{serving_dir.rstrip('/')}/{version}"
    if io_utils.is_remote(serving_dir):
        _copy_tree(model_dir, final_dir)
        return final_dir
    temp_dir = os.path.join(serving_dir, f".tmp-{version}")
    _copy_tree(model_dir, temp_dir)
    os.rename(temp_dir, final_dir)
    return final_dir


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
        # Shows whether the file that both models were scored on changed between decisions.
        "input_fingerprint": fingerprint(read.expand_patterns([input_pattern], "input"))["sha256"],
        "metric": metric,
        "min_improvement": min_improvement,
        "candidate": {"model": candidate["model"], metric: candidate_score},
        "current": {"model": current_version, metric: current_score} if current else None,
        "promoted": promoted,
    }
    if promoted:
        final_dir = _install_version(candidate["model"], serving_dir)
        record["promoted_to"] = final_dir
        logger.info("Promoted %s to %s (%s %s vs %s)", candidate["model"], final_dir, metric, candidate_score, current_score)
    else:
        logger.info(
            "Kept %s: the candidate's %s %.4f is not above %.4f + %s", current_version, metric,
            candidate_score, current_score, min_improvement,
        )
    tf.io.gfile.makedirs(serving_dir)
    with tf.io.gfile.GFile(f"{serving_dir.rstrip('/')}/{PROMOTIONS_FILE}", "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    return record
