"""Configuration loading, overrides and validation messages."""

import pytest

from pairtrain import config as config_lib
from pairtrain.config import ConfigError


def test_defaults_are_valid():
    config = config_lib.build({})
    assert config.preprocess.vocab_size == 2000
    assert config.train.embedding_dim == 128
    assert config.delimiter == "\t"


def test_csv_delimiter_default():
    assert config_lib.build({"input": {"format": "csv"}}).delimiter == ","


def test_set_overrides_nested_values():
    config = config_lib.build({}, ["preprocess.vocab_size=500", "input.label.positive=[dup, same]"])
    assert config.preprocess.vocab_size == 500
    assert config.input.label.positive == ["dup", "same"]


def test_yaml_boolean_label_hint():
    with pytest.raises(ConfigError, match="quote the value"):
        config_lib.build({}, ["input.label.positive=[yes]"])


def test_numeric_labels_become_strings():
    config = config_lib.build({"input": {"label": {"positive": [1], "negative": [0]}}})
    assert config.input.label.positive == ["1"]


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"preprocess": {"vocab_sise": 10}}, "unknown config key 'preprocess.vocab_sise'"),
        ({"preprocess": {"vocab_size": "big"}}, "preprocess.vocab_size: 'big'"),
        ({"preprocess": {"vocab_size": 2}}, "reserved for padding and out-of-vocabulary"),
        ({"preprocess": {"eval_fraction": -0.1}}, "preprocess.eval_fraction: -0.1"),
        ({"input": {"format": "xml"}}, "input.format: 'xml'"),
        ({"train": {"epochs": True}}, "train.epochs: True"),
        ({"input": {"header": False}}, "needs 0-based column indexes"),
        ({"input": {"label": {"positive": ["1"], "negative": ["1"]}}}, "both positive and negative"),
    ],
)
def test_invalid_values_name_key(values, fragment):
    with pytest.raises(ConfigError) as error:
        config_lib.build(values)
    assert fragment in str(error.value)


def test_override_without_equals():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        config_lib.build({}, ["preprocess.vocab_size"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config_lib.load(str(tmp_path / "absent.yaml"))


def test_repository_configs_load():
    import pathlib

    for path in sorted((pathlib.Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")):
        config_lib.load(str(path))


def test_every_invalid_value_reported():
    with pytest.raises(ConfigError) as error:
        config_lib.build({"preprocess": {"vocab_size": "x", "min_count": "y", "typo": 1}})
    message = str(error.value)
    assert message.startswith("3 invalid config values")
    assert "preprocess.vocab_size" in message
    assert "preprocess.min_count" in message
    assert "'preprocess.typo'" in message


def test_impossible_values_reported_together():
    with pytest.raises(ConfigError) as error:
        config_lib.build({"preprocess": {"vocab_size": 1, "max_reject_fraction": -0.5}})
    message = str(error.value)
    assert "preprocess.vocab_size: 1" in message
    assert "preprocess.max_reject_fraction: -0.5" in message


def test_beam_options_become_flags():
    config = config_lib.build(
        {"beam_options": {"runner": "DataflowRunner", "save_main_session": False, "use_public_ips": True}}
    )
    assert config.beam_args() == ["--runner=DataflowRunner", "--use_public_ips"]


def test_null_removes_beam_option():
    config = config_lib.build({"beam_options": {"setup_file": "./setup.py", "runner": "X"}}, ["beam_options.setup_file=null"])
    assert config.beam_args() == ["--runner=X"]


def test_type_and_range_errors_together():
    with pytest.raises(ConfigError) as error:
        config_lib.build({"preprocess": {"vocab_size": "lots", "eval_fraction": 1.5}, "train": {"learning_rate": "fast"}})
    message = str(error.value)
    assert message.startswith("3 invalid config values")
    assert "preprocess.eval_fraction: 1.5" in message


def test_unknown_encoding_rejected():
    with pytest.raises(ConfigError, match="input.encoding: 'nonsense'"):
        config_lib.build({"input": {"encoding": "nonsense"}})
