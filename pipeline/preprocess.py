"""The preprocessing pipeline: read raw pairs, split them, analyze and transform with tf.Transform, write TFRecords.

See `pipeline.layout` for what it writes.
"""

import json
import logging
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.options.pipeline_options import _BeamArgumentParser
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata

from pairtrain import io_utils
from pairtrain.config import Config, ConfigError
from pipeline import features, read, stats
from pipeline.layout import DATA_DIR, REJECTED_DIR, SPLITS, TFRECORD_SUFFIX
from pipeline.publish import PublishRun
from pipeline.transform import RAW_FEATURE_SPEC, make_preprocessing_fn

logger = logging.getLogger(__name__)

# Runner used when --runner is not given. Beam's DirectRunner first tries to
# download the Prism runner binary; the in-process FnApiRunner never reaches
# the network and can still run several worker processes through
# --direct_num_workers and --direct_running_mode=multi_processing.
DEFAULT_RUNNER = "FnApiRunner"


def check_beam_args(beam_args: list[str]) -> None:
    """Raise ValueError for any argument that no Beam PipelineOptions class defines.

    Beam itself only logs a warning and drops such arguments, which hides typos
    such as --num_worker.
    """
    # _BeamArgumentParser is what PipelineOptions.get_all_options uses; it
    # understands Beam's value-provider arguments.
    parser = _BeamArgumentParser(allow_abbrev=False)
    seen = set()
    for cls in PipelineOptions.__subclasses__():
        if str(cls) not in seen:
            seen.add(str(cls))
            cls._add_argparse_args(parser)  # pylint: disable=protected-access
    _, unknown = parser.parse_known_args(beam_args)
    if unknown:
        raise ConfigError(
            f"unrecognized arguments: {' '.join(unknown)}; they are neither pairtrain options "
            "nor Beam pipeline options (see `pairtrain preprocess --help`)"
        )


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    check_beam_args(beam_args)
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    return options


def _split_name(pair: dict[str, Any], eval_fraction: float, validation_fraction: float) -> str:
    fraction = read.split_fraction(pair[features.TEXT_A], pair[features.TEXT_B])
    if fraction < eval_fraction:
        return "eval"
    # Rescale the rest to [0, 1) so validation_fraction is a share of the non-eval pairs.
    rest = (fraction - eval_fraction) / (1.0 - eval_fraction)
    return "validation" if rest < validation_fraction else "train"


def _to_instance(pair: dict[str, Any]) -> dict[str, Any]:
    return {
        features.TEXT_A: pair[features.TEXT_A].encode("utf-8"),
        features.TEXT_B: pair[features.TEXT_B].encode("utf-8"),
        features.LABEL: pair[features.LABEL],
    }


class _CheckIdRange(beam.DoFn):
    """Fail the pipeline when an id would fall outside Embedding(vocab_size, ...)."""

    def __init__(self, vocab_size: int):
        self._vocab_size = vocab_size

    def process(self, example):
        for key in features.ID_KEYS:
            ids = example[key]
            if len(ids) and (ids.max() >= self._vocab_size or ids.min() < 0):
                raise ValueError(
                    f"{key} holds id {int(ids.max())}, outside [0, {self._vocab_size}); "
                    "the id layout and vocab_size disagree"
                )
        yield example


@beam.ptransform_fn
def _ReadPairs(pcoll, parser: read.RecordParser):  # pylint: disable=invalid-name
    return (
        pcoll
        | "Reshuffle" >> beam.Reshuffle()
        | "Parse" >> beam.FlatMap(parser.parse_file)
    )


def _write_json_lines(pcoll, path_prefix: str, suffix: str, label: str):
    return (
        pcoll
        | f"Serialize{label}" >> beam.Map(lambda value: json.dumps(value, ensure_ascii=False, default=str))
        | f"Write{label}" >> beam.io.WriteToText(path_prefix, file_name_suffix=suffix)
    )


def build_pipeline(p: beam.Pipeline, config: Config, run_info: dict[str, Any], output_dir: str) -> None:
    """Add reading, splitting, tf.Transform, writing and publishing steps to `p`.

    `run_info` carries the matched input files ("train", "eval"), the runner
    name and the input fingerprint into summary.json.
    """
    prep = config.preprocess
    parser = read.RecordParser(config)
    train_files, eval_files = run_info["inputs"]["train"], run_info["inputs"]["eval"]

    train_parsed = p | "ListTrainFiles" >> beam.Create(train_files) | "ReadTrainPairs" >> _ReadPairs(parser)
    parsed = [train_parsed]
    if eval_files:
        eval_parsed = p | "ListEvalFiles" >> beam.Create(eval_files) | "ReadEvalPairs" >> _ReadPairs(parser)
        parsed.append(eval_parsed)

    # Route each record to the dead letters or to a split.
    all_parsed = parsed | "MergeParsed" >> beam.Flatten()
    rejected = all_parsed | "SelectRejected" >> beam.FlatMap(lambda kv: [kv[1]] if kv[0] == read.REJECTED else [])
    eval_fraction = 0.0 if eval_files else prep.eval_fraction
    train_pairs = train_parsed | "SelectTrainPairs" >> beam.FlatMap(lambda kv: [kv[1]] if kv[0] == read.OK else [])
    split_to_pairs = dict(
        zip(
            SPLITS,
            train_pairs
            | "SplitPairs"
            >> beam.Partition(
                lambda pair, _: SPLITS.index(_split_name(pair, eval_fraction, prep.validation_fraction)),
                len(SPLITS),
            ),
        )
    )
    if eval_files:
        eval_from_files = eval_parsed | "SelectEvalPairs" >> beam.FlatMap(
            lambda kv: [kv[1]] if kv[0] == read.OK else []
        )
        split_to_pairs["eval"] = (split_to_pairs["eval"], eval_from_files) | "MergeEval" >> beam.Flatten()

    written = [_write_json_lines(rejected, io_utils.join(output_dir, REJECTED_DIR, "rejected"), ".jsonl", "Rejected")]
    reason_counts = (
        rejected
        | "RejectReasons" >> beam.Map(lambda record: record["reason"])
        | "CountRejectReasons" >> beam.combiners.Count.PerElement()
        | "ToRejectDict" >> beam.combiners.ToDict()
    )
    first_decode_error = (
        rejected
        | "SelectDecodeErrors" >> beam.Filter(lambda record: record["reason"] == read.DECODE_ERROR)
        | "FirstDecodeError"
        >> beam.combiners.Top.Smallest(1, key=lambda record: (record[read.SOURCE_KEY], record[read.LINE_KEY]))
    )

    # Analyze on the train split only, so eval and validation out-of-vocabulary
    # rates are honest; transform every split with the same transform_fn.
    raw_metadata = dataset_metadata.DatasetMetadata.from_feature_spec(RAW_FEATURE_SPEC)
    preprocessing_fn = make_preprocessing_fn(prep.vocab_size, prep.min_count, prep.max_tokens)
    split_to_instances = {
        split: split_to_pairs[split] | f"ToInstances{split.title()}" >> beam.Map(_to_instance) for split in SPLITS
    }
    transform_fn = (split_to_instances["train"], raw_metadata) | "AnalyzeTrain" >> tft_beam.AnalyzeDataset(
        preprocessing_fn
    )
    written.append(transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(output_dir))

    split_to_stats = {}
    for split in SPLITS:
        name = split.title()
        transformed, transformed_metadata = (
            (split_to_instances[split], raw_metadata),
            transform_fn,
        ) | f"Transform{name}" >> tft_beam.TransformDataset()
        checked = transformed | f"CheckIds{name}" >> beam.ParDo(_CheckIdRange(prep.vocab_size))
        coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
        written.append(
            checked
            | f"Encode{name}" >> beam.Map(coder.encode)
            | f"Write{name}"
            >> beam.io.WriteToTFRecord(
                io_utils.join(output_dir, DATA_DIR, split),
                file_name_suffix=TFRECORD_SUFFIX,
                num_shards=prep.num_shards,
            )
        )
        split_to_stats[split] = checked | f"Stats{name}" >> beam.CombineGlobally(stats.SplitStatsFn())

    # Publishing runs as the pipeline's last step, after every write, so the
    # completion marker appears even when a launcher returns right after
    # submitting the job (Dataflow Flex Templates, --no_wait).
    _ = (
        p
        | "StartPublish" >> beam.Create([None])
        | "Publish"
        >> beam.ParDo(
            PublishRun(config, run_info, output_dir),
            reason_counts=beam.pvalue.AsSingleton(reason_counts),
            first_decode_error=beam.pvalue.AsSingleton(first_decode_error),
            written=beam.pvalue.AsList(
                written | "MergeWriteResults" >> beam.Flatten() | "IgnoreWriteResults" >> beam.Map(lambda _: None)
            ),
            **{f"{split}_stats": beam.pvalue.AsSingleton(split_to_stats[split]) for split in SPLITS},
        )
    )


