"""Shared helpers: case inputs, configs and real preprocessing runs on the in-process Beam runner."""

import os

# Quiet TensorFlow's C++ start-up logs; must be set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import pathlib
import subprocess
import sys

import pytest

from pairtrain import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
CASES = pathlib.Path(__file__).resolve().parent / "cases"
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests always name the in-process runner: Beam 2.77's DirectRunner first
# tries to download the Prism runner.
BEAM_ARGS = ["--runner=FnApiRunner"]


def case(name: str) -> str:
    return str(CASES / name)


def make_config(train_files, eval_files=(), **sections) -> config_lib.Config:
    """Build a config for a headered TSV with columns text_a, text_b, label.

    Keyword arguments are config sections, e.g. preprocess={"min_count": 2}.
    By default nothing is held out, so tiny case files keep every row.
    """
    values = {
        "input": {"train": [str(path) for path in train_files], "eval": [str(path) for path in eval_files]},
        "preprocess": {"eval_fraction": 0.0, "validation_fraction": 0.0},
        "train": {"epochs": 2, "batch_size_per_replica": 8},
    }
    for section, overrides in sections.items():
        values.setdefault(section, {}).update(overrides)
    return config_lib.build(values)


def preprocess(config, output_dir, **kwargs) -> dict:
    from pipeline.job import run_preprocess

    return run_preprocess(config, str(output_dir), BEAM_ARGS, **kwargs)


def read_examples(output_dir, split: str) -> list[dict]:
    """Return the split's examples as dicts of Python lists, parsed with the transformed feature spec."""
    from trainer.data import PreprocessedData

    import tensorflow as tf

    data = PreprocessedData(str(output_dir))
    examples = []
    dataset = tf.data.TFRecordDataset(data.files(split), compression_type="GZIP")
    for serialized in dataset:
        parsed = tf.io.parse_single_example(serialized, data.feature_spec)
        example = {}
        for key, value in parsed.items():
            if isinstance(value, tf.sparse.SparseTensor):
                value = value.values
            example[key] = value.numpy().tolist()
        examples.append(example)
    return examples


def vocabulary(output_dir) -> list[str]:
    import tensorflow_transform as tft

    from pipeline import features

    path = tft.TFTransformOutput(str(output_dir)).vocabulary_file_by_name(features.VOCABULARY_NAME)
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def run_cli(*args, cwd=REPO, check=True, env=None) -> subprocess.CompletedProcess:
    """Run `pairtrain ARGS` in a fresh Python process and return the completed process."""
    full_env = dict(os.environ, **(env or {}))
    process = subprocess.run(
        [sys.executable, "-m", "pairtrain.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and process.returncode != 0:
        raise AssertionError(f"pairtrain {' '.join(args)} failed ({process.returncode}):\n{process.stderr[-4000:]}")
    return process


def write_yaml(path, values: dict) -> str:
    import yaml

    pathlib.Path(path).write_text(yaml.safe_dump(values))
    return str(path)


def load_json(path) -> dict:
    return json.loads(pathlib.Path(path).read_text())


@pytest.fixture(scope="session")
def trained_hermetic(tmp_path_factory):
    """Preprocess, train and export on the hermetic-export case once for the export tests."""
    from trainer.train import train_and_evaluate

    root = tmp_path_factory.mktemp("hermetic")
    train_file = case("hermetic-export/train.tsv")
    config = make_config([train_file], [train_file], train={"epochs": 3})
    data_dir = root / "preprocessed"
    preprocess(config, data_dir)
    record = train_and_evaluate(config, str(data_dir), str(root / "run"))
    return {"config": config, "data_dir": data_dir, "run_dir": root / "run", "record": record}
