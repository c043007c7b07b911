"""The pipeline's last step: check the run's counts, write summary.json and the completion marker."""

import datetime
import logging
from typing import Any

import apache_beam as beam

from pairtrain import io_utils
from pairtrain.config import Config
from pipeline import features, read
from pipeline.layout import (
    COMPLETE_MARKER,
    DATA_DIR,
    REJECTED_DIR,
    RUNNING_MARKER,
    SPLITS,
    SUMMARY_FILE,
    TRANSFORM_FN_DIR,
)

logger = logging.getLogger(__name__)


class PreprocessError(RuntimeError):
    """A preprocessing run whose output must not be published."""


def vocabulary_size(output_dir: str, train_ids_seen: int) -> int:
    """Return the number of tokens in the written vocabulary file, or 0 for an empty vocabulary.

    tf.Transform writes one placeholder token when the vocabulary is empty,
    so a file of one line counts as empty when no train text used a real id.
    """
    path = io_utils.join(output_dir, TRANSFORM_FN_DIR, "assets", features.VOCABULARY_NAME)
    lines = io_utils.read_text(path).splitlines() if io_utils.exists(path) else []
    if len(lines) <= 1 and train_ids_seen == 0:
        return 0
    return len(lines)


def summarize(config: Config, run_info: dict, output_dir: str, reports: dict[str, Any]) -> dict:
    """Build summary.json from the pipeline's named reports."""
    split_stats = {split: reports[f"{split}_stats"] for split in SPLITS}
    reason_counts = reports["reason_counts"]
    written = {split: split_stats[split]["examples"] for split in SPLITS}
    rejected_total = sum(reason_counts.values())
    duplicates = reports["duplicates"]
    shared = reports["shared_texts"]
    return {
        "status": "complete",
        **run_info,
        "records": {
            "read": reports["records_read"],
            "read_by_input": reports["records_read_by_role"],
            "faulty_by_input": reports["faults_by_role"],
            "written": written,
            "rejected": {"total": rejected_total, "by_reason": dict(sorted(reason_counts.items()))},
        },
        "duplicates": {
            "exact": duplicates.get("exact", 0),
            "swapped": duplicates.get("swapped", 0),
            "conflicting_labels": duplicates.get("conflicting_labels", 0),
            "dropped": duplicates.get("dropped", 0),
        },
        "split": {
            "mode": "files" if run_info["inputs"]["eval"] else config.preprocess.split,
            **reports["split_report"],
            "eval_texts": shared.get("eval_texts", 0),
            "eval_texts_in_train": shared.get("eval_texts_in_train", 0),
        },
        "positive_labels": {split: split_stats[split]["positive"] for split in SPLITS},
        "vocab_size": config.preprocess.vocab_size,
        "vocabulary_tokens": vocabulary_size(output_dir, split_stats["train"]["distinct_vocabulary_ids"]),
        "vocabulary_file": io_utils.join(output_dir, TRANSFORM_FN_DIR, "assets", features.VOCABULARY_NAME),
        "max_id": max(split_stats[split]["max_id"] for split in SPLITS),
        "out_of_vocabulary_rate": {
            split: (s["out_of_vocabulary_ids"] / s["token_ids"]) if s["token_ids"] else None
            for split, s in split_stats.items()
        },
        "truncated_texts": {split: split_stats[split]["truncated_texts"] for split in SPLITS},
        "token_length_percentiles": {split: split_stats[split]["token_length_percentiles"] for split in SPLITS},
        "data_files": {split: io_utils.join(output_dir, DATA_DIR, f"{split}-*") for split in SPLITS},
        "dead_letters": io_utils.join(output_dir, REJECTED_DIR, "rejected-*.jsonl"),
        "config": config.to_dict(),
    }


def check_summary(config: Config, summary: dict[str, Any], first_decode_error: dict | None) -> None:
    """Raise PreprocessError when the run's output must not be published."""
    prep = config.preprocess
    records = summary["records"]
    rejected = records["rejected"]
    by_reason = rejected["by_reason"]
    dead_letters = summary["dead_letters"]
    written_total = sum(records["written"].values())

    if records["read"] != written_total + rejected["total"]:
        raise PreprocessError(
            f"{records['read']} records were read but {written_total} were written and "
            f"{rejected['total']} rejected; this is a bug in pairtrain, please report it"
        )
    if first_decode_error and config.input.decode_errors == "fail":
        raise PreprocessError(
            f"{by_reason[read.DECODE_ERROR]} record(s) could not be decoded as {config.input.encoding!r}; "
            f"the first is in {first_decode_error[read.SOURCE_KEY]}, {first_decode_error['detail']}. "
            "Set input.encoding to the file's encoding (for example --set input.encoding=cp1252), "
            "or set input.decode_errors=reject to keep such records in the dead letters. "
            f"The undecodable records are in {dead_letters}"
        )
    if records["read"] == 0:
        raise PreprocessError("the input files hold no records")
    if written_total == 0:
        raise PreprocessError(
            f"no valid record is left: all {records['read']} records were rejected ({by_reason}); see {dead_letters}"
        )
    # Checked per input role, so a large clean eval file cannot hide a bad
    # train file. Dropped duplicates are a requested clean-up, not bad input.
    for role, read_count in sorted(records["read_by_input"].items()):
        faulty = records["faulty_by_input"].get(role, 0)
        fraction = faulty / read_count if read_count else 0.0
        if fraction > prep.max_reject_fraction:
            raise PreprocessError(
                f"{faulty} of {read_count} {role} input records ({fraction:.1%}) were rejected, more than "
                f"preprocess.max_reject_fraction={prep.max_reject_fraction} ({by_reason}); see {dead_letters}"
            )
    if records["written"]["train"] == 0:
        raise PreprocessError("the train split is empty; add train data or lower the eval and validation fractions")
    if summary["vocabulary_tokens"] == 0:
        raise PreprocessError(
            "the vocabulary is empty: no token of the train split occurs at least "
            f"preprocess.min_count={prep.min_count} times, or every text is empty, so every id "
            "would be out-of-vocabulary. Lower preprocess.min_count or check input.columns"
        )
    if summary["max_id"] >= prep.vocab_size:
        raise PreprocessError(f"an id ({summary['max_id']}) is not below vocab_size={prep.vocab_size}")


class PublishRun(beam.DoFn):
    """Write summary.json, then the completion marker if the run passes every check.

    A failed check writes summary.json with status "failed" and the reason,
    then raises PreprocessError, which fails the pipeline.
    """

    def __init__(self, config: Config, run_info: dict, output_dir: str):
        self._config = config
        self._run_info = run_info
        self._output_dir = output_dir

    def process(self, _, reports, written):
        del written  # A side input only so that this step runs after every write.
        summary = summarize(self._config, self._run_info, self._output_dir, reports)
        summary["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        summary_path = io_utils.join(self._output_dir, SUMMARY_FILE)
        first_decode_error = reports["first_decode_error"]
        try:
            check_summary(self._config, summary, first_decode_error[0] if first_decode_error else None)
        except PreprocessError as error:
            summary["status"] = "failed"
            summary["error"] = str(error)
            io_utils.write_json(summary_path, summary)
            raise
        io_utils.write_json(summary_path, summary)
        io_utils.write_json(
            io_utils.join(self._output_dir, COMPLETE_MARKER), {"finished_at": summary["finished_at"]}
        )
        io_utils.delete_if_exists([io_utils.join(self._output_dir, RUNNING_MARKER)])
        yield summary["records"]
