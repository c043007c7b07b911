"""Launch the preprocessing pipeline: match inputs, prepare the output directory, run, report."""

import hashlib
import json
import logging
import os
import time
from typing import Any

import apache_beam as beam
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions

from pairtrain import io_utils
from pairtrain.config import Config, ConfigError
from pipeline import read
from pipeline.layout import COMPLETE_MARKER, RUN_OUTPUTS, RUNNING_MARKER, SUMMARY_FILE, TEMP_DIR
from pipeline.preprocess import build_pipeline, pipeline_options
from pipeline.publish import PreprocessError

logger = logging.getLogger(__name__)


def _is_empty_dir(path: str) -> bool:
    """Return whether `path` is missing or contains no files (for gs://, no objects under the prefix)."""
    if not io_utils.is_remote(path):
        return not os.path.isdir(path) or not os.listdir(path)
    return not FileSystems.match([io_utils.join(path, "**")])[0].metadata_list


def prepare_output_dir(output_dir: str, overwrite: bool, input_files: list[str], wait: bool = True) -> None:
    """Make `output_dir` ready for a run, never deleting files that pairtrain did not write.

    A finished run is replaced only with `overwrite`. A run that crashed or
    failed (it has the running marker) is cleared, unless it was submitted
    without waiting and so may still be running elsewhere. Any other non-empty
    directory is refused, because its files are the user's.
    """
    prefix = _absolute(output_dir).rstrip("/") + "/"
    inside = [path for path in input_files if _absolute(path).startswith(prefix)]
    if inside:
        raise FileExistsError(
            f"input file {inside[0]} is inside the output directory {output_dir}; "
            "write the output to a separate directory"
        )
    complete = io_utils.exists(io_utils.join(output_dir, COMPLETE_MARKER))
    running_path = io_utils.join(output_dir, RUNNING_MARKER)
    running = io_utils.exists(running_path)
    if running and not complete and not overwrite and not io_utils.read_json(running_path).get("waited", True):
        raise FileExistsError(
            f"{output_dir} belongs to a job that was submitted without waiting and may still be "
            "running; pass --overwrite once it has stopped, or choose another output directory"
        )
    if complete and not overwrite:
        raise FileExistsError(
            f"{output_dir} already contains a finished preprocessing run; "
            "pass --overwrite to replace it, or choose another output directory"
        )
    if not complete and not running and not _is_empty_dir(output_dir):
        raise FileExistsError(
            f"{output_dir} is not empty and contains no pairtrain preprocessing run; "
            "choose a new or empty output directory"
        )
    if complete:
        logger.info("Replacing the finished run in %s", output_dir)
    elif running:
        logger.info("Removing outputs of an unfinished earlier run in %s", output_dir)
    markers = [io_utils.join(output_dir, name) for name in (COMPLETE_MARKER, RUNNING_MARKER)]
    io_utils.delete_if_exists(markers + [io_utils.join(output_dir, name) for name in RUN_OUTPUTS])
    io_utils.write_json(running_path, {"started_at": time.time(), "waited": wait})


def _absolute(path: str) -> str:
    return path if io_utils.is_remote(path) else os.path.abspath(path)


def fingerprint(paths: list[str]) -> dict[str, Any]:
    """Return a SHA-256 over each input file's path and content, for summary.json and metrics.json.

    Local files are hashed in full. Remote files (gs://) use the checksum the
    storage service keeps, so launching a job does not download its input.
    """
    digest = hashlib.sha256()
    files = []
    for path in paths:
        if io_utils.is_remote(path):
            entry = {"path": path, "checksum": str(FileSystems.checksum(path))}
        else:
            file_digest = hashlib.sha256()
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    file_digest.update(chunk)
            entry = {"path": path, "sha256": file_digest.hexdigest()}
        files.append(entry)
        digest.update(json.dumps(entry, sort_keys=True).encode() + b"\n")
    return {"sha256": digest.hexdigest(), "files": files}


def _raise_published_failure(output_dir: str, error: Exception) -> None:
    """Re-raise a failed publishing check as a plain PreprocessError, without Beam's wrapping."""
    summary_path = io_utils.join(output_dir, SUMMARY_FILE)
    if io_utils.exists(summary_path):
        summary = io_utils.read_json(summary_path)
        if summary.get("status") == "failed":
            raise PreprocessError(summary["error"]) from error


def _warn_about_quality(summary: dict) -> None:
    rejected = summary["records"]["rejected"]
    if rejected["total"]:
        logger.warning(
            "Rejected %d of %d records (%s); they are in %s",
            rejected["total"],
            summary["records"]["read"],
            ", ".join(f"{reason}: {count}" for reason, count in rejected["by_reason"].items()),
            summary["dead_letters"],
        )
    conflicting = summary["duplicates"]["conflicting_labels"]
    if conflicting:
        logger.warning("%d duplicate pair(s) have a different label than their first copy", conflicting)
    shared = summary["split"]["eval_texts_in_train"]
    if shared:
        advice = "; preprocess.split=group keeps each text in one split" if summary["split"]["mode"] == "hash" else ""
        logger.warning(
            "%d of %d eval texts also occur in train, which inflates eval metrics%s",
            shared,
            summary["split"]["eval_texts"],
            advice,
        )


def run_preprocess(
    config: Config,
    output_dir: str,
    beam_args: list[str] = (),
    overwrite: bool = False,
    wait: bool = True,
    transform_temp_dir: str | None = None,
) -> dict:
    """Run the preprocessing job and return summary.json's content.

    Raises read.InputError before the pipeline starts when a glob matches no
    file, and PreprocessError when the run must not be published. With
    wait=False (or a Dataflow --template_location) it returns once the job is
    submitted; the job itself writes the summary and the marker at its end.

    transform_temp_dir is where tf.Transform keeps temporary files while the
    pipeline is built and run (default <output_dir>/tmp). tf.Transform reaches
    it through TensorFlow's file system, so a gs:// path there is a real call
    to Cloud Storage even when the rest of the job is not run.
    """
    if not config.input.train:
        raise read.InputError("no train input: set input.train in the config or pass --train")
    train_files = read.expand_patterns(config.input.train, "train input")
    eval_files = read.expand_patterns(config.input.eval, "eval input")
    options = pipeline_options(list(beam_args))
    template_location = options.view_as(GoogleCloudOptions).template_location
    if template_location:
        # Only a job description is written now; the output directory is
        # used when the template is launched, so leave it untouched.
        logger.info("Building a Dataflow template at %s; nothing runs now", template_location)
    else:
        prepare_output_dir(output_dir, overwrite, train_files + eval_files, wait)

    try:
        pipeline = beam.Pipeline(options=options)
    except ValueError as error:  # Beam raises ValueError for an unknown --runner.
        raise ConfigError(f"invalid --runner: {error}") from None
    runner_name = type(pipeline.runner).__name__
    run_info = {
        "runner": runner_name,
        "inputs": {"train": train_files, "eval": eval_files},
        "input_fingerprint": fingerprint(train_files + eval_files),
    }
    logger.info(
        "Preprocessing %d train and %d eval file(s) into %s on %s",
        len(train_files),
        len(eval_files),
        output_dir,
        runner_name,
    )
    started = time.monotonic()
    temp_dir = transform_temp_dir or io_utils.join(output_dir, TEMP_DIR)
    try:
        with tft_beam.Context(temp_dir=temp_dir):
            build_pipeline(pipeline, config, run_info, output_dir)
            # Local runners execute the whole pipeline inside run().
            result = pipeline.run()
            if template_location or not wait:
                logger.info("Submitted the pipeline without waiting for it (%s)", template_location or "--no_wait")
                return {"status": "submitted", **run_info}
            result.wait_until_finish()
    except Exception as error:  # Beam wraps worker errors in runner-specific types.
        _raise_published_failure(output_dir, error)
        raise
    finally:
        if not transform_temp_dir and wait and not template_location:
            io_utils.delete_if_exists([temp_dir])
    logger.info("Pipeline finished in %.1f s", time.monotonic() - started)

    summary = io_utils.read_json(io_utils.join(output_dir, SUMMARY_FILE))
    _warn_about_quality(summary)
    logger.info(
        "Wrote %s examples (rejected %d) and a vocabulary of %d tokens to %s",
        summary["records"]["written"],
        summary["records"]["rejected"]["total"],
        summary["vocabulary_tokens"],
        output_dir,
    )
    return summary
