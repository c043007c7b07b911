"""Run the preprocessing pipeline, check its results and publish them with a completion marker."""

import datetime
import json
import logging
import time
from typing import Any

import apache_beam as beam
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystems import FileSystems

from pairtrain import io_utils
from pairtrain.config import Config
from pipeline import features, read
from pipeline.preprocess import (
    COMPLETE_MARKER,
    DATA_DIR,
    REJECTED_DIR,
    SPLITS,
    STATS_DIR,
    SUMMARY_FILE,
    TEMP_DIR,
    PreprocessError,
    build_pipeline,
    pipeline_options,
)

logger = logging.getLogger(__name__)

# Everything a run writes, so a rerun after a crash can clear a half-written run.
_RUN_OUTPUTS = (DATA_DIR, REJECTED_DIR, STATS_DIR, TEMP_DIR, "transform_fn", "transformed_metadata", SUMMARY_FILE)


def _prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    marker = io_utils.join(output_dir, COMPLETE_MARKER)
    if io_utils.exists(marker):
        if not overwrite:
            raise FileExistsError(
                f"{output_dir} already holds a finished preprocessing run; "
                "pass --overwrite to replace it, or choose another output directory"
            )
        logger.info("Replacing the finished run in %s", output_dir)
        io_utils.delete_if_exists([marker])
    stale = [io_utils.join(output_dir, name) for name in _RUN_OUTPUTS]
    if any(io_utils.exists(path) for path in stale):
        logger.info("Removing outputs of an unfinished earlier run in %s", output_dir)
    io_utils.delete_if_exists(stale)


def _read_stats(output_dir: str, name: str) -> dict[str, Any]:
    path = io_utils.join(output_dir, STATS_DIR, name + ".json")
    text = io_utils.read_text(path).strip() if io_utils.exists(path) else ""
    return json.loads(text) if text else {}


def _check_results(config: Config, summary: dict[str, Any], output_dir: str) -> None:
    """Raise PreprocessError when the run's output must not be published."""
    prep = config.preprocess
    records = summary["records"]
    rejected = records["rejected"]
    dead_letters = io_utils.join(output_dir, REJECTED_DIR, "rejected-*.jsonl")
    by_reason = rejected["by_reason"]

    if by_reason.get(read.DECODE_ERROR):
        raise PreprocessError(
            f"{by_reason[read.DECODE_ERROR]} record(s) could not be decoded as "
            f"{config.input.encoding!r}; the first is in {summary['first_decode_error']}. "
            "Set input.encoding to the file's encoding (for example --set input.encoding=cp1252). "
            f"The undecodable records are in {dead_letters}"
        )
    if records["read"] == 0:
        raise PreprocessError("the input files hold no records")
    written = sum(records["written"].values())
    if written == 0:
        raise PreprocessError(
            f"no valid record is left: all {records['read']} records were rejected "
            f"({by_reason}); see {dead_letters}"
        )
    fraction = rejected["total"] / records["read"]
    if fraction > prep.max_reject_fraction:
        raise PreprocessError(
            f"{rejected['total']} of {records['read']} records ({fraction:.1%}) were rejected, "
            f"more than preprocess.max_reject_fraction={prep.max_reject_fraction} "
            f"({by_reason}); see {dead_letters}"
        )
    if records["written"]["train"] == 0:
        raise PreprocessError("the train split is empty; add train data or lower the eval and validation fractions")
    if summary["vocabulary_tokens"] == 0:
        raise PreprocessError(
            "the vocabulary is empty: no token of the train split occurs at least "
            f"preprocess.min_count={prep.min_count} times (or every text is empty), "
            "so every id would be out-of-vocabulary. Lower min_count or check the text columns"
        )
    if summary["max_id"] >= prep.vocab_size:
        raise PreprocessError(f"an id ({summary['max_id']}) is not below vocab_size={prep.vocab_size}")


def _first_decode_error(output_dir: str) -> str:
    for metadata in FileSystems.match([io_utils.join(output_dir, REJECTED_DIR, "*.jsonl")])[0].metadata_list:
        for line in io_utils.read_text(metadata.path).splitlines():
            record = json.loads(line)
            if record["reason"] == read.DECODE_ERROR:
                return f"{record[read.SOURCE_KEY]}, {record['detail']}"
    return "the dead letters"


def _summarize(config, output_dir, runner_name, train_files, eval_files) -> dict[str, Any]:
    split_stats = {split: _read_stats(output_dir, split) for split in SPLITS}
    by_reason = _read_stats(output_dir, "rejected")
    written = {split: split_stats[split].get("examples", 0) for split in SPLITS}
    rejected_total = sum(by_reason.values())
    train = split_stats["train"]
    return {
        "status": "complete",
        "runner": runner_name,
        "inputs": {"train": train_files, "eval": eval_files},
        "records": {
            "read": sum(written.values()) + rejected_total,
            "written": written,
            "rejected": {"total": rejected_total, "by_reason": by_reason},
        },
        "positive_labels": {split: split_stats[split].get("positive", 0) for split in SPLITS},
        "vocab_size": config.preprocess.vocab_size,
        "vocabulary_tokens": train.get("distinct_vocabulary_ids", 0),
        "vocabulary_file": io_utils.join(output_dir, "transform_fn", "assets", features.VOCABULARY_NAME),
        "max_id": max(split_stats[split].get("max_id", -1) for split in SPLITS),
        "out_of_vocabulary_rate": {
            split: (s["out_of_vocabulary_ids"] / s["token_ids"]) if s.get("token_ids") else None
            for split, s in split_stats.items()
        },
        "truncated_texts": {split: split_stats[split].get("truncated_texts", {}) for split in SPLITS},
        "token_length_percentiles": {
            split: split_stats[split].get("token_length_percentiles", {}) for split in SPLITS
        },
        "data_files": {split: io_utils.join(output_dir, DATA_DIR, f"{split}-*") for split in SPLITS},
        "dead_letters": io_utils.join(output_dir, REJECTED_DIR, "rejected-*.jsonl"),
    }


def run_preprocess(config: Config, output_dir: str, beam_args: list[str] = (), overwrite: bool = False) -> dict:
    """Run the preprocessing job and return its summary; raise on any failure.

    Raises read.InputError before the pipeline starts when a glob matches no
    file, and PreprocessError after it when the output must not be published.
    """
    train_files = read.expand_patterns(config.input.train, "train")
    if not train_files:
        raise read.InputError("no train input: set input.train in the config or pass --train")
    eval_files = read.expand_patterns(config.input.eval, "eval")
    options = pipeline_options(list(beam_args))
    _prepare_output_dir(output_dir, overwrite)

    logger.info(
        "Preprocessing %d train and %d eval file(s) into %s", len(train_files), len(eval_files), output_dir
    )
    started = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    runner_name = type(pipeline.runner).__name__
    with tft_beam.Context(temp_dir=io_utils.join(output_dir, TEMP_DIR)):
        build_pipeline(pipeline, config, train_files, eval_files, output_dir)
        result = pipeline.run()
        result.wait_until_finish()
    logger.info("Pipeline finished on %s in %.1f s", runner_name, time.monotonic() - started)

    summary = _summarize(config, output_dir, runner_name, train_files, eval_files)
    summary["config"] = config.to_dict()
    summary["input_fingerprint"] = read.fingerprint(train_files + eval_files)
    summary["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    if summary["records"]["rejected"]["by_reason"].get(read.DECODE_ERROR):
        summary["first_decode_error"] = _first_decode_error(output_dir)
    try:
        _check_results(config, summary, output_dir)
    except PreprocessError as error:
        summary["status"] = "failed"
        summary["error"] = str(error)
        io_utils.write_json(io_utils.join(output_dir, SUMMARY_FILE), summary)
        raise
    finally:
        io_utils.delete_if_exists([io_utils.join(output_dir, TEMP_DIR), io_utils.join(output_dir, STATS_DIR)])

    io_utils.write_json(io_utils.join(output_dir, SUMMARY_FILE), summary)
    io_utils.write_json(io_utils.join(output_dir, COMPLETE_MARKER), {"finished_at": summary["finished_at"]})
    logger.info(
        "Wrote %s examples (rejected %d) and a vocabulary of %d tokens to %s",
        summary["records"]["written"],
        summary["records"]["rejected"]["total"],
        summary["vocabulary_tokens"],
        output_dir,
    )
    return summary
