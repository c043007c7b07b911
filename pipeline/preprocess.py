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
from pipeline import features, quality, read, stats
from pipeline.layout import DATA_DIR, REJECTED_DIR, SPLITS, TFRECORD_SUFFIX
from pipeline.publish import PublishRun
from pipeline.transform import RAW_FEATURE_SPEC, make_preprocessing_fn

logger = logging.getLogger(__name__)

# Runner used when --runner is not given. Beam's DirectRunner first tries to
# download the Prism runner binary; the in-process FnApiRunner never reaches
# the network and can still run several worker processes through
# --direct_num_workers and --direct_running_mode=multi_processing.
DEFAULT_RUNNER = "FnApiRunner"


class _StrictBeamParser(_BeamArgumentParser):
    """Raise ConfigError for a bad option value instead of printing Beam's whole usage and exiting."""

    def error(self, message):
        raise ConfigError(f"invalid Beam pipeline option: {message}")


def check_beam_args(beam_args: list[str]) -> None:
    """Raise ValueError for any argument that no Beam PipelineOptions class defines.

    Beam itself only logs a warning and drops such arguments, which hides typos
    such as --num_worker.
    """
    # _BeamArgumentParser is what PipelineOptions.get_all_options uses; it
    # understands Beam's value-provider arguments.
    parser = _StrictBeamParser(allow_abbrev=False)
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
            if not len(ids):
                continue
            bad = int(ids.max()) if ids.max() >= self._vocab_size else int(ids.min())
            if bad >= self._vocab_size or bad < 0:
                raise ValueError(
                    f"{key} contains id {bad}, outside [0, {self._vocab_size}); "
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


def _select(outcome: str):
    return beam.FlatMap(lambda kv: [kv[1]] if kv[0] == outcome else [])


def _with_role(role: str):
    return beam.Map(lambda pair: {**pair, quality.ROLE_KEY: role})


@beam.ptransform_fn
def _AssignSplits(pairs, prep, eval_from_files: bool):  # pylint: disable=invalid-name
    """Add a split name to each pair and return (pairs, report of the split).

    Pairs from eval files stay in eval. The others go to train, validation or
    eval by a stable hash: of the unordered pair ("hash" mode), or of the
    connected component of texts the pair belongs to ("group" mode), so that
    no text is in two splits.
    """
    eval_fraction = 0.0 if eval_from_files else prep.eval_fraction

    def assign(pair, text_to_root=None):
        if pair[quality.ROLE_KEY] == "eval":
            return {**pair, quality.SPLIT_KEY: "eval"}
        if text_to_root is None:
            key = quality.pair_key(pair)
        else:
            key = quality.component_of(pair, text_to_root)
        split = quality.choose_split(quality.unit_fraction(key), eval_fraction, prep.validation_fraction)
        return {**pair, quality.SPLIT_KEY: split, "component": key}

    if prep.split == "group":
        text_to_root = (
            pairs
            | "TextEdges" >> beam.Map(lambda pair: tuple(pair[quality.NORMALIZED_KEY]))
            | "ConnectTexts" >> beam.CombineGlobally(quality.ConnectedTextsFn())
        )
        assigned = pairs | "AssignByComponent" >> beam.Map(assign, beam.pvalue.AsSingleton(text_to_root))
        report = (
            assigned
            | "SelectGroupedPairs" >> beam.Filter(lambda pair: "component" in pair)
            | "KeyByComponent" >> beam.Map(lambda pair: (pair["component"], pair[quality.SPLIT_KEY]))
            | "CountComponentSplits" >> beam.combiners.Count.PerElement()
            | "RegroupComponents" >> beam.Map(lambda kv: (kv[0][0], {kv[0][1]: kv[1]}))
            | "MergeComponentCounts" >> beam.CombinePerKey(_merge_counts)
            | "SummarizeComponents" >> beam.combiners.ToList()
            | "ToComponentReport" >> beam.Map(quality.summarize_components)
        )
    else:
        assigned = pairs | "AssignByHash" >> beam.Map(assign)
        report = pairs.pipeline | "NoComponentReport" >> beam.Create([{}])
    return assigned, report


def _merge_counts(counts: list[dict]) -> dict:
    merged: dict = {}
    for count in counts:
        for key, value in count.items():
            merged[key] = merged.get(key, 0) + value
    return merged


@beam.ptransform_fn
def _CountSharedTexts(pairs):  # pylint: disable=invalid-name
    """Count distinct eval texts and how many of them also occur in train."""

    def texts(pair):
        for text in pair[quality.NORMALIZED_KEY]:
            if text and pair[quality.SPLIT_KEY] in ("train", "eval"):
                yield text, pair[quality.SPLIT_KEY]

    def tally(kv):
        splits = set(kv[1])
        if "eval" in splits:
            yield "eval_texts"
            if "train" in splits:
                yield "eval_texts_in_train"

    return (
        pairs
        | "TextsBySplit" >> beam.FlatMap(texts)
        | "GroupTexts" >> beam.GroupByKey()
        | "TallyShared" >> beam.FlatMap(tally)
        | "CountShared" >> beam.combiners.Count.PerElement()
        | "ToSharedDict" >> beam.combiners.ToDict()
    )


def build_pipeline(p: beam.Pipeline, config: Config, run_info: dict[str, Any], output_dir: str) -> None:
    """Add reading, checking, splitting, tf.Transform, writing and publishing steps to `p`.

    `run_info` carries the matched input files ("train", "eval"), the runner
    name and the input fingerprint into summary.json.
    """
    prep = config.preprocess
    parser = read.RecordParser(config)
    files = run_info["inputs"]
    role_to_parsed = {
        role: p | f"List{role.title()}Files" >> beam.Create(files[role]) | f"Read{role.title()}Pairs" >> _ReadPairs(parser)
        for role in ("train", "eval")
        if files[role]
    }
    all_parsed = list(role_to_parsed.values()) | "MergeParsed" >> beam.Flatten()
    records_read = all_parsed | "CountRecordsRead" >> beam.combiners.Count.Globally()
    rejected = [
        parsed | f"Select{role.title()}Rejected" >> _select(read.REJECTED) | f"Tag{role.title()}Rejected" >> _with_role(role)
        for role, parsed in role_to_parsed.items()
    ]
    records_read_by_role = (
        [
            parsed | f"Count{role.title()}Records" >> beam.combiners.Count.Globally()
            | f"Name{role.title()}Count" >> beam.Map(lambda count, role=role: (role, count))
            for role, parsed in role_to_parsed.items()
        ]
        | "MergeRoleCounts" >> beam.Flatten()
        | "ToRoleCountDict" >> beam.combiners.ToDict()
    )
    pairs = [
        parsed | f"Select{role.title()}Pairs" >> _select(read.OK) | f"Tag{role.title()}Role" >> _with_role(role)
        for role, parsed in role_to_parsed.items()
    ] | "MergePairs" >> beam.Flatten()

    # Token counts and normalized texts, from the graph tokenizer.
    pairs = (
        pairs
        | "BatchForTokenizer" >> beam.BatchElements(min_batch_size=64, max_batch_size=1024)
        | "TokenizePairs" >> beam.ParDo(quality.TokenizePairs())
    )
    routed = pairs | "RouteLongTexts" >> beam.Map(
        quality.route_long_text, max_tokens=prep.max_tokens, reject=prep.long_text == "reject"
    )
    rejected.append(routed | "SelectTooLong" >> _select(read.REJECTED))
    pairs = routed | "SelectShortEnough" >> _select(read.OK)

    # Duplicates: the same unordered pair of texts, across all input files.
    marked = (
        pairs
        | "KeyByPair" >> beam.Map(lambda pair: (quality.pair_key(pair), pair))
        | "GroupEqualPairs" >> beam.GroupByKey()
        | "MarkDuplicates" >> beam.FlatMap(quality.mark_duplicates, drop=prep.drop_duplicates)
    )
    pairs = marked | "SelectUnique" >> _select(read.OK)
    rejected.append(marked | "SelectDuplicates" >> _select(quality.DUPLICATE))
    duplicate_counts = (
        marked
        | "SelectDuplicateCounts" >> _select("count")
        | "CountDuplicates" >> beam.combiners.Count.PerElement()
        | "ToDuplicateDict" >> beam.combiners.ToDict()
    )

    pairs, split_report = pairs | "AssignSplits" >> _AssignSplits(prep, eval_from_files=bool(files["eval"]))
    shared_texts = pairs | "CountSharedTexts" >> _CountSharedTexts()
    split_to_pairs = dict(
        zip(SPLITS, pairs | "SplitPairs" >> beam.Partition(lambda pair, _: SPLITS.index(pair[quality.SPLIT_KEY]), len(SPLITS)))
    )

    rejected = rejected | "MergeRejected" >> beam.Flatten()
    written = [_write_json_lines(rejected, io_utils.join(output_dir, REJECTED_DIR, "rejected"), ".jsonl", "Rejected")]
    reason_counts = (
        rejected
        | "RejectReasons" >> beam.Map(lambda record: record["reason"])
        | "CountRejectReasons" >> beam.combiners.Count.PerElement()
        | "ToRejectDict" >> beam.combiners.ToDict()
    )
    # Faulty records per input role, so a bad train file is not hidden by a large clean eval file.
    faults_by_role = (
        rejected
        | "SelectFaults" >> beam.Filter(lambda record: record["reason"] != quality.DUPLICATE)
        | "FaultRoles" >> beam.Map(lambda record: record[quality.ROLE_KEY])
        | "CountFaultRoles" >> beam.combiners.Count.PerElement()
        | "ToFaultRoleDict" >> beam.combiners.ToDict()
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

    reports = [
        records_read | "NameRecordsRead" >> beam.Map(lambda value: ("records_read", value)),
        records_read_by_role | "NameRoleCounts" >> beam.Map(lambda value: ("records_read_by_role", value)),
        faults_by_role | "NameFaultRoles" >> beam.Map(lambda value: ("faults_by_role", value)),
        reason_counts | "NameReasonCounts" >> beam.Map(lambda value: ("reason_counts", value)),
        first_decode_error | "NameFirstDecodeError" >> beam.Map(lambda value: ("first_decode_error", value)),
        duplicate_counts | "NameDuplicateCounts" >> beam.Map(lambda value: ("duplicates", value)),
        split_report | "NameSplitReport" >> beam.Map(lambda value: ("split_report", value)),
        shared_texts | "NameSharedTexts" >> beam.Map(lambda value: ("shared_texts", value)),
    ]
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
        reports.append(
            checked
            | f"Stats{name}" >> beam.CombineGlobally(stats.SplitStatsFn())
            | f"Name{name}Stats" >> beam.Map(lambda value, split=split: (f"{split}_stats", value))
        )

    # Publishing runs as the pipeline's last step, after every write, so the
    # completion marker appears even when a launcher returns right after
    # submitting the job (Dataflow Flex Templates, --no_wait).
    _ = (
        p
        | "StartPublish" >> beam.Create([None])
        | "Publish"
        >> beam.ParDo(
            PublishRun(config, run_info, output_dir),
            reports=beam.pvalue.AsDict(reports | "MergeReports" >> beam.Flatten()),
            written=beam.pvalue.AsList(
                written | "MergeWriteResults" >> beam.Flatten() | "IgnoreWriteResults" >> beam.Map(lambda _: None)
            ),
        )
    )
