"""Launch the preprocessing pipeline: match inputs, prepare the output directory, run, report."""

import hashlib
import logging
import time
from typing import Any

import apache_beam as beam
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions

from pairtrain import io_utils
from pairtrain.config import Config
from pipeline import read
from pipeline.layout import COMPLETE_MARKER, RUN_OUTPUTS, SUMMARY_FILE, TEMP_DIR
from pipeline.preprocess import build_pipeline, pipeline_options
from pipeline.publish import PreprocessError

logger = logging.getLogger(__name__)


def prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    """Refuse to replace a finished run unless `overwrite`; clear what an unfinished run left."""
    marker = io_utils.join(output_dir, COMPLETE_MARKER)
    if io_utils.exists(marker):
        if not overwrite:
            raise FileExistsError(
                f"{output_dir} already contains a finished preprocessing run; "
                "pass --overwrite to replace it, or choose another output directory"
            )
        logger.info("Replacing the finished run in %s", output_dir)
        io_utils.delete_if_exists([marker])
    stale = [io_utils.join(output_dir, name) for name in RUN_OUTPUTS]
    if any(io_utils.exists(path) for path in stale):
        logger.info("Removing outputs of an unfinished earlier run in %s", output_dir)
    io_utils.delete_if_exists(stale)


def fingerprint(paths: list[str]) -> dict[str, Any]:
    """Return a SHA-256 over each input file's path and content, for summary.json and metrics.json."""
    digest = hashlib.sha256()
    files = []
    for path in paths:
        file_digest = hashlib.sha256()
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                file_digest.update(chunk)
        files.append({"path": path, "sha256": file_digest.hexdigest()})
        digest.update(path.encode() + b"\0" + file_digest.hexdigest().encode() + b"\n")
    return {"sha256": digest.hexdigest(), "files": files}


def _raise_published_failure(output_dir: str, error: Exception) -> None:
    """Re-raise a failed publishing check as a plain PreprocessError, without Beam's wrapping."""
    summary_path = io_utils.join(output_dir, SUMMARY_FILE)
    if io_utils.exists(summary_path):
        summary = io_utils.read_json(summary_path)
        if summary.get("status") == "failed":
            raise PreprocessError(summary["error"]) from error


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
    train_files = read.expand_patterns(config.input.train, "train")
    eval_files = read.expand_patterns(config.input.eval, "eval")
    options = pipeline_options(list(beam_args))
    template_location = options.view_as(GoogleCloudOptions).template_location
    prepare_output_dir(output_dir, overwrite)

    pipeline = beam.Pipeline(options=options)
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
    logger.info(
        "Wrote %s examples (rejected %d) and a vocabulary of %d tokens to %s",
        summary["records"]["written"],
        summary["records"]["rejected"]["total"],
        summary["vocabulary_tokens"],
        output_dir,
    )
    return summary
