"""Promotion: a model reaches the serving folder only when it scores better than the one there."""

import json

import pytest

from pairtrain.promote import PROMOTIONS_FILE, promote
from tests.conftest import REPO, make_config, preprocess, run_cli

SAMPLE_TRAIN = str(REPO / "examples" / "data" / "questions_train.tsv")


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """A model trained for several epochs and one barely trained, on the bundled sample."""
    from trainer.train import train_and_evaluate

    root = tmp_path_factory.mktemp("promote")
    data = root / "data"
    preprocess(make_config([SAMPLE_TRAIN]), data)
    good = make_config([SAMPLE_TRAIN], train={"epochs": 8, "learning_rate": 0.01})
    weak = make_config([SAMPLE_TRAIN], train={"epochs": 1, "learning_rate": 1e-6})
    return {
        "good": train_and_evaluate(good, str(data), str(root / "good"))["model_dir"],
        "weak": train_and_evaluate(weak, str(data), str(root / "weak"))["model_dir"],
    }


def versions(serving):
    return sorted(p.name for p in serving.iterdir() if p.name.isdigit())


def test_first_model_is_promoted(two_models, tmp_path):
    serving = tmp_path / "serving"
    record = promote(two_models["weak"], str(serving), SAMPLE_TRAIN)
    assert record["promoted"] is True
    assert record["current"] is None
    assert len(versions(serving)) == 1
    assert (serving / versions(serving)[0] / "saved_model.pb").exists()


def test_better_model_replaces_weaker(two_models, tmp_path):
    serving = tmp_path / "serving"
    promote(two_models["weak"], str(serving), SAMPLE_TRAIN)
    record = promote(two_models["good"], str(serving), SAMPLE_TRAIN)
    assert record["promoted"] is True
    assert record["candidate"]["auc"] > record["current"]["auc"]
    assert len(versions(serving)) == 2
    log = [json.loads(line) for line in (serving / PROMOTIONS_FILE).read_text().splitlines()]
    assert [entry["promoted"] for entry in log] == [True, True]
    assert log[0]["input_fingerprint"] == log[1]["input_fingerprint"]
    assert len(log[0]["input_fingerprint"]) == 64


def test_weaker_model_not_promoted(two_models, tmp_path):
    serving = tmp_path / "serving"
    promote(two_models["good"], str(serving), SAMPLE_TRAIN)
    record = promote(two_models["weak"], str(serving), SAMPLE_TRAIN)
    assert record["promoted"] is False
    assert len(versions(serving)) == 1
    assert "promoted_to" not in record


def test_equal_model_needs_improvement(two_models, tmp_path):
    serving = tmp_path / "serving"
    promote(two_models["good"], str(serving), SAMPLE_TRAIN)
    record = promote(two_models["good"], str(serving), SAMPLE_TRAIN, metric="accuracy")
    assert record["promoted"] is False
    assert record["candidate"]["accuracy"] == record["current"]["accuracy"]


def test_promote_cli(two_models, tmp_path):
    serving = tmp_path / "serving"
    process = run_cli(
        "promote", "--candidate", two_models["good"], "--serving", str(serving), "--input", SAMPLE_TRAIN,
        "--metric", "f1",
    )
    assert json.loads(process.stdout)["promoted"] is True
    assert len(versions(serving)) == 1


def test_promote_to_url_serving_folder(two_models):
    import tensorflow as tf

    # ram:// is TensorFlow's in-memory file system; it has the same URL form as gs://.
    serving = "ram://pairtrain-serving"
    record = promote(two_models["good"], serving, SAMPLE_TRAIN)
    assert record["promoted"] is True
    assert record["promoted_to"].startswith(serving + "/")
    assert tf.io.gfile.exists(record["promoted_to"] + "/saved_model.pb")
    assert tf.io.gfile.exists(record["promoted_to"] + "/variables/variables.index")
