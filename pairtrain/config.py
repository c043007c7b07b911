"""Typed, layered job configuration: defaults, then a YAML file, then `--set` overrides.

Every section is a dataclass. Loading rejects unknown keys, wrong types and
impossible values before any work starts, and each message names the key, the
value received and what is allowed. The resolved configuration is saved with
every run and every exported model.
"""

import codecs
import copy
import dataclasses
import typing
from typing import Any

import yaml

FORMATS = ("tsv", "csv", "jsonl")
EMPTY_TEXT_POLICIES = ("accept", "reject")
SHARD_BY = ("auto", "file", "record")
DECODE_ERROR_POLICIES = ("fail", "reject")
LONG_TEXT_POLICIES = ("truncate", "reject")
SPLIT_MODES = ("hash", "group")


class ConfigError(ValueError):
    """An invalid configuration value, reported before any work starts."""


@dataclasses.dataclass
class LabelConfig:
    # Raw label values of each class. Used when `threshold` is unset.
    positive: list[str] = dataclasses.field(default_factory=lambda: ["1"])
    negative: list[str] = dataclasses.field(default_factory=lambda: ["0"])
    # When set, a numeric label >= threshold is class 1 and below it class 0.
    threshold: float | None = None


@dataclasses.dataclass
class ColumnsConfig:
    # Column of each field: a 0-based index, or a header name when the file
    # has a header row. For JSON Lines, the object key.
    text_a: int | str = "text_a"
    text_b: int | str = "text_b"
    label: int | str = "label"


@dataclasses.dataclass
class InputConfig:
    format: str = "tsv"
    header: bool = True
    # Field delimiter; empty means tab for tsv and comma for csv.
    delimiter: str = ""
    # Whether double quotes group a field (and may contain delimiters and line
    # breaks). Turn off for files with unbalanced quotes, such as MRPC.
    quoting: bool = True
    encoding: str = "utf-8"
    # A line that does not decode: "fail" the run before anything is
    # published, or "reject" the record into the dead letters.
    decode_errors: str = "fail"
    columns: ColumnsConfig = dataclasses.field(default_factory=ColumnsConfig)
    label: LabelConfig = dataclasses.field(default_factory=LabelConfig)
    # Paths or globs (local or gs://). Without eval files the eval split is
    # carved from the train files by `preprocess.eval_fraction`.
    train: list[str] = dataclasses.field(default_factory=list)
    eval: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class PreprocessConfig:
    # Embedding input size: every token id is below it. Ids 0 and 1 are
    # padding and out-of-vocabulary, so at most vocab_size - 2 tokens.
    vocab_size: int = 2000
    # Tokens seen fewer times than this in the train split are out-of-vocabulary.
    min_count: int = 1
    # Longer texts are truncated to this many tokens.
    max_tokens: int = 64
    # Share of pairs that go to the eval split when no eval files are given.
    eval_fraction: float = 0.1
    # Share of the remaining train pairs held out for early stopping.
    validation_fraction: float = 0.1
    # TFRecord shards per split; 0 lets Beam choose.
    num_shards: int = 0
    # The run fails when more than this share of records is rejected.
    max_reject_fraction: float = 0.05
    # What to do with a pair whose text is empty or blank: accept or reject.
    empty_text: str = "accept"
    # What to do with a text longer than max_tokens: truncate or reject.
    long_text: str = "truncate"
    # Drop repeated pairs, (a, b) again or swapped as (b, a), keeping the first.
    # Duplicates are counted either way.
    drop_duplicates: bool = False
    # How pairs are split: "hash" of the unordered pair, or "group", which
    # keeps every connected group of texts in one split so no text is shared.
    split: str = "hash"


@dataclasses.dataclass
class TrainConfig:
    embedding_dim: int = 128
    batch_size_per_replica: int = 32
    epochs: int = 30
    learning_rate: float = 0.003
    # Epochs without validation-loss improvement before training stops;
    # 0 turns early stopping off.
    early_stopping_patience: int = 3
    shuffle_buffer: int = 10000
    seed: int = 42
    # Number of logical CPU devices to mirror over when no GPU is visible;
    # 0 trains on the one CPU device. Meant for testing MirroredStrategy.
    cpu_replicas: int = 0
    # Classification threshold for accuracy, precision, recall and F1.
    threshold: float = 0.5
    # How workers split the data under MultiWorkerMirroredStrategy: by file
    # (needs at least as many TFRecord shards as workers, see
    # preprocess.num_shards), by record, or auto (by file when possible).
    shard_by: str = "auto"


@dataclasses.dataclass
class Config:
    input: InputConfig = dataclasses.field(default_factory=InputConfig)
    preprocess: PreprocessConfig = dataclasses.field(default_factory=PreprocessConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    # Run directory of `pairtrain run`: preprocessed data, model and metrics.
    output_dir: str = "runs/default"
    # Beam pipeline options, e.g. {runner: DataflowRunner, region: europe-west1}.
    # Options given on the command line take precedence over these.
    beam_options: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain data, with the delimiter resolved."""
        values = dataclasses.asdict(self)
        values["input"]["delimiter"] = self.delimiter
        return values

    def beam_args(self) -> list[str]:
        """Return beam_options as command-line flags, for PipelineOptions."""
        args = []
        for name, value in self.beam_options.items():
            if value is None:
                continue  # null removes an option set in the config file.
            if isinstance(value, bool):
                # Beam's boolean options are store_true flags: false means leave it out.
                if value:
                    args.append(f"--{name}")
            elif isinstance(value, list):
                args.extend(f"--{name}={item}" for item in value)
            else:
                args.append(f"--{name}={value}")
        return args

    @property
    def delimiter(self) -> str:
        if self.input.delimiter:
            return self.input.delimiter
        return "\t" if self.input.format == "tsv" else ","


def _type_name(expected: Any) -> str:
    return getattr(expected, "__name__", str(expected))


def _check_type(key: str, value: Any, expected: Any) -> Any:
    """Return `value` converted to `expected`, or raise ConfigError."""
    origin = typing.get_origin(expected)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        errors = []
        for option in typing.get_args(expected):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _check_type(key, value, option)
            except ConfigError as error:
                errors.append(str(error))
        allowed = " or ".join(_type_name(t) for t in typing.get_args(expected))
        raise ConfigError(f"invalid value for {key}: {value!r}; expected {allowed}")
    if origin is list:
        (item_type,) = typing.get_args(expected)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"invalid value for {key}: {value!r}; expected a list")
        return [_check_type(f"{key}[{i}]", item, item_type) for i, item in enumerate(value)]
    if expected is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"invalid value for {key}: {value!r}; expected a mapping")
        return dict(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        # YAML reads label values such as 1 as numbers; they are strings here.
        return str(value)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        hint = ""
        if expected is str and isinstance(value, bool):
            hint = " (YAML reads yes, no, on and off as booleans: quote the value)"
        raise ConfigError(
            f"invalid value for {key}: {value!r} ({type(value).__name__}); "
            f"expected {_type_name(expected)}{hint}"
        )
    return value


def _apply(target: Any, values: dict[str, Any], prefix: str, errors: list[str]) -> None:
    """Set `values` on the dataclass `target`, appending one message per bad key to `errors`."""
    if not isinstance(values, dict):
        errors.append(f"invalid value for {prefix.rstrip('.') or 'config'}: expected a mapping, got {values!r}")
        return
    hints = typing.get_type_hints(type(target))
    names = [field.name for field in dataclasses.fields(target)]
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in names:
            errors.append(f"unknown config key {path!r}; allowed keys here: {', '.join(names)}")
            continue
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{path}.", errors)
            continue
        try:
            setattr(target, key, _check_type(path, value, hints[key]))
        except ConfigError as error:
            errors.append(str(error))


def _validate(config: Config, errors: list[str]) -> None:
    """Append one message per impossible or inconsistent value to `errors`."""
    source = config.input
    prep = config.preprocess
    train = config.train
    checks = [
        (source.format in FORMATS, "input.format", source.format, f"one of {', '.join(FORMATS)}"),
        (len(config.delimiter) == 1, "input.delimiter", source.delimiter, "a single character"),
        (
            prep.vocab_size > 2,
            "preprocess.vocab_size",
            prep.vocab_size,
            "an integer above 2, because ids 0 and 1 are reserved for padding and out-of-vocabulary",
        ),
        (prep.min_count >= 1, "preprocess.min_count", prep.min_count, "an integer >= 1"),
        (prep.max_tokens >= 1, "preprocess.max_tokens", prep.max_tokens, "an integer >= 1"),
        (0 <= prep.eval_fraction < 1, "preprocess.eval_fraction", prep.eval_fraction, "a number in [0, 1)"),
        (
            0 <= prep.validation_fraction < 1,
            "preprocess.validation_fraction",
            prep.validation_fraction,
            "a number in [0, 1)",
        ),
        (prep.num_shards >= 0, "preprocess.num_shards", prep.num_shards, "an integer >= 0"),
        (
            0 <= prep.max_reject_fraction <= 1,
            "preprocess.max_reject_fraction",
            prep.max_reject_fraction,
            "a number in [0, 1]",
        ),
        (
            prep.empty_text in EMPTY_TEXT_POLICIES,
            "preprocess.empty_text",
            prep.empty_text,
            f"one of {', '.join(EMPTY_TEXT_POLICIES)}",
        ),
        (
            source.decode_errors in DECODE_ERROR_POLICIES,
            "input.decode_errors",
            source.decode_errors,
            f"one of {', '.join(DECODE_ERROR_POLICIES)}",
        ),
        (
            prep.long_text in LONG_TEXT_POLICIES,
            "preprocess.long_text",
            prep.long_text,
            f"one of {', '.join(LONG_TEXT_POLICIES)}",
        ),
        (prep.split in SPLIT_MODES, "preprocess.split", prep.split, f"one of {', '.join(SPLIT_MODES)}"),
        (train.embedding_dim >= 1, "train.embedding_dim", train.embedding_dim, "an integer >= 1"),
        (
            train.batch_size_per_replica >= 1,
            "train.batch_size_per_replica",
            train.batch_size_per_replica,
            "an integer >= 1",
        ),
        (train.epochs >= 1, "train.epochs", train.epochs, "an integer >= 1"),
        (train.learning_rate > 0, "train.learning_rate", train.learning_rate, "a number > 0"),
        (
            train.early_stopping_patience >= 0,
            "train.early_stopping_patience",
            train.early_stopping_patience,
            "an integer >= 0",
        ),
        (train.shuffle_buffer >= 1, "train.shuffle_buffer", train.shuffle_buffer, "an integer >= 1"),
        (train.cpu_replicas >= 0, "train.cpu_replicas", train.cpu_replicas, "an integer >= 0"),
        (0 < train.threshold < 1, "train.threshold", train.threshold, "a number in (0, 1)"),
        (train.shard_by in SHARD_BY, "train.shard_by", train.shard_by, f"one of {', '.join(SHARD_BY)}"),
    ]
    for ok, key, value, allowed in checks:
        if not ok:
            errors.append(f"invalid value for {key}: {value!r}; expected {allowed}")
    try:
        codecs.lookup(source.encoding)
    except LookupError:
        errors.append(f"invalid value for input.encoding: {source.encoding!r}; expected a Python codec name such as utf-8 or cp1252")
    label = source.label
    if label.threshold is None:
        if not label.positive or not label.negative:
            errors.append("input.label needs both 'positive' and 'negative' raw values, or a 'threshold'")
        overlap = set(label.positive) & set(label.negative)
        if overlap:
            errors.append(f"invalid value for input.label: {sorted(overlap)} listed as both positive and negative")
    for name in ("text_a", "text_b", "label"):
        column = getattr(source.columns, name)
        if source.format == "jsonl" and not isinstance(column, str):
            errors.append(f"invalid value for input.columns.{name}: {column!r}; jsonl input needs an object key")
        elif source.format != "jsonl" and not source.header and not isinstance(column, int):
            errors.append(
                f"invalid value for input.columns.{name}: {column!r}; a file without a header row "
                "needs 0-based column indexes"
            )
        elif isinstance(column, int) and column < 0:
            errors.append(f"invalid value for input.columns.{name}: {column}; expected an index >= 0")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one `--set section.key=value` argument; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"invalid --set {text!r}; expected KEY=VALUE, e.g. preprocess.vocab_size=500")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def build(values: dict[str, Any] | None = None, overrides: list[str] = ()) -> Config:
    """Build a validated Config from a mapping and `--set` overrides."""
    values = copy.deepcopy(values or {})
    for text in overrides:
        path, value = parse_override(text)
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"invalid --set {text!r}: {part!r} is not a section")
        node[path[-1]] = value
    config = Config()
    errors: list[str] = []
    _apply(config, values, "", errors)
    # A value of the wrong type was not set, so its default is validated in
    # its place and only the type error is reported for it.
    _validate(config, errors)
    if len(errors) == 1:
        raise ConfigError(errors[0])
    if errors:
        raise ConfigError(f"{len(errors)} invalid config values:\n" + "\n".join(f"  - {e}" for e in errors))
    return config


def load(path: str | None, overrides: list[str] = ()) -> Config:
    """Load a YAML config file (local or gs://), apply overrides and validate."""
    values: dict[str, Any] = {}
    if path:
        from pairtrain import io_utils

        try:
            values = yaml.safe_load(io_utils.read_text(path)) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"invalid YAML in config file {path}: {error}") from None
    return build(values, overrides)


def from_dict(values: dict[str, Any]) -> Config:
    return build(values)
