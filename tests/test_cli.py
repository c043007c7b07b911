"""The command line: help, argument errors, and run → evaluate → predict on the bundled sample."""

import csv

import pytest

from tests.conftest import REPO, case, load_json, run_cli

SAMPLE_TRAIN = str(REPO / "examples" / "data" / "questions_train.tsv")
SAMPLE_EVAL = str(REPO / "examples" / "data" / "questions_eval.tsv")
SAMPLE_CONFIG = str(REPO / "configs" / "sample.yaml")


@pytest.mark.parametrize("command", ["preprocess", "train", "evaluate", "predict", "promote", "run"])
def test_command_help(command):
    process = run_cli(command, "--help")
    assert "usage: pairtrain " + command in process.stdout
    assert "--" in process.stdout


def test_unknown_option_for_train(tmp_path):
    process = run_cli("train", "--config", SAMPLE_CONFIG, "--data", str(tmp_path), "--epochz", "3", check=False)
    assert process.returncode == 2
    assert "unrecognized arguments: --epochz 3" in process.stderr


def test_unknown_beam_option(tmp_path):
    process = run_cli(
        "preprocess", "--config", SAMPLE_CONFIG, "--output", str(tmp_path / "out"), "--num_wrokers=3", check=False
    )
    assert process.returncode == 2
    assert "--num_wrokers=3" in process.stderr
    assert "neither pairtrain options nor Beam pipeline options" in process.stderr


def test_invalid_override_names_key(tmp_path):
    process = run_cli("preprocess", "--config", SAMPLE_CONFIG, "--set", "preprocess.vocab_size=1", check=False)
    assert process.returncode == 2
    assert "preprocess.vocab_size: 1" in process.stderr


def test_train_refuses_unfinished_data(tmp_path):
    process = run_cli("train", "--config", SAMPLE_CONFIG, "--data", str(tmp_path), check=False)
    assert process.returncode == 2
    assert "not a finished preprocessing run" in process.stderr


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """`pairtrain run` on the bundled sample, with every path given on the command line."""
    output = tmp_path_factory.mktemp("sample") / "run"
    process = run_cli(
        "run",
        "--config",
        SAMPLE_CONFIG,
        "--train",
        SAMPLE_TRAIN,
        "--eval",
        SAMPLE_EVAL,
        "--output",
        str(output),
        "--set",
        "train.epochs=3",
        "--runner=FnApiRunner",
    )
    return output, process


def test_run_writes_run_directory(sample_run):
    output, process = sample_run
    metrics = load_json(output / "metrics.json")
    for key in ("accuracy", "precision", "recall", "f1", "auc"):
        assert 0.0 <= metrics["eval"][key] <= 1.0
    assert metrics["eval"]["examples"] == 103
    assert metrics["config"]["output_dir"] == str(output)
    assert metrics["package_versions"]["tensorflow"]
    assert len(metrics["input_fingerprint"]["files"]) == 2
    assert (output / "preprocessed" / "PREPROCESS_COMPLETE").exists()
    versions = [p for p in (output / "model").iterdir() if p.name.isdigit()]
    assert len(versions) == 1
    assert (versions[0] / "saved_model.pb").exists()
    assert f"model: {versions[0]}" in process.stdout
    assert "accuracy" in process.stdout
    summary = load_json(output / "preprocessed" / "summary.json")
    assert summary["inputs"]["eval"] == [SAMPLE_EVAL]


def test_evaluate_writes_metrics(sample_run, tmp_path):
    output, _ = sample_run
    result_path = tmp_path / "eval.json"
    process = run_cli("evaluate", "--model", str(output / "model"), "--input", SAMPLE_EVAL, "--output", str(result_path))
    result = load_json(result_path)
    assert result["examples"] == 103
    assert result["rejected"] == {}
    metrics = load_json(output / "metrics.json")
    assert result["accuracy"] == pytest.approx(metrics["eval"]["accuracy"], abs=1e-6)
    assert '"f1"' in process.stdout


def test_predict_keeps_input_order(sample_run, tmp_path):
    import numpy as np

    from tests.test_export import serve_text

    output, _ = sample_run
    unlabelled = tmp_path / "unlabelled.tsv"
    with open(SAMPLE_EVAL, encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    unlabelled.write_text("text_a\ttext_b\n" + "".join(f"{a}\t{b}\n" for a, b, _ in rows[1:21]))
    predictions = tmp_path / "predictions.txt"
    run_cli("predict", "--model", str(output / "model"), "--input", str(unlabelled), "--output", str(predictions))
    lines = predictions.read_text().splitlines()
    assert lines[0] == "probability"
    assert len(lines) == 21
    versions = [p for p in (output / "model").iterdir() if p.name.isdigit()]
    expected = serve_text(str(versions[0]), [{"text_a": a, "text_b": b} for a, b, _ in rows[1:21]])
    np.testing.assert_allclose([float(v) for v in lines[1:]], expected, atol=1e-6)


def test_predict_rejects_misaligned_record(sample_run, tmp_path):
    output, _ = sample_run
    broken = tmp_path / "broken.tsv"
    broken.write_text("text_a\ttext_b\nfine\tpair\nonly one field\n")
    process = run_cli(
        "predict", "--model", str(output / "model"), "--input", str(broken), "--output", str(tmp_path / "p.txt"),
        check=False,
    )
    assert process.returncode == 2
    assert "broken.tsv, line 3" in process.stderr


def test_preprocess_existing_output(tmp_path):
    args = ["preprocess", "--config", SAMPLE_CONFIG, "--train", case("padding-id/most_frequent.tsv")]
    args += ["--set", "input.eval=[]", "--set", "preprocess.validation_fraction=0", "--set", "preprocess.eval_fraction=0"]
    args += ["--output", str(tmp_path / "out")]
    run_cli(*args)
    again = run_cli(*args, check=False)
    assert again.returncode == 2
    assert "already contains a finished preprocessing run" in again.stderr
    assert again.stderr.count("pairtrain preprocess: error:") == 1
    run_cli(*args, "--overwrite")


def test_train_missing_data_dir(tmp_path):
    process = run_cli("train", "--config", SAMPLE_CONFIG, "--data", str(tmp_path / "absent"), check=False)
    assert process.returncode == 2
    assert "data directory not found" in process.stderr
    assert process.stderr.count("pairtrain train: error:") == 1
    assert "ERROR pairtrain" not in process.stderr


def test_bad_beam_option_value(tmp_path):
    process = run_cli(
        "preprocess", "--config", SAMPLE_CONFIG, "--output", str(tmp_path / "out"), "--direct_num_workers=abc",
        check=False,
    )
    assert process.returncode == 2
    assert "invalid Beam pipeline option" in process.stderr
    assert "usage:" not in process.stderr


def test_unknown_runner(tmp_path):
    process = run_cli(
        "preprocess", "--config", SAMPLE_CONFIG, "--output", str(tmp_path / "out"), "--runner=NoSuchRunner",
        check=False,
    )
    assert process.returncode == 2
    assert "invalid --runner" in process.stderr
    assert "Traceback" not in process.stderr
