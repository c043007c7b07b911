"""The exported SavedModel: raw-text and tf.Example signatures, hermetic assets, parity with training."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from pipeline import features
from trainer import export
from trainer.train import train_and_evaluate
from tests.conftest import case, make_config, preprocess, read_examples


def load_request(name: str) -> list[dict]:
    with open(case(f"{name}/predict_request.json"), encoding="utf-8") as handle:
        return json.load(handle)["instances"]


def serve_text(model_dir, instances) -> np.ndarray:
    loaded = tf.saved_model.load(model_dir)
    signature = loaded.signatures[export.TEXT_SIGNATURE]
    output = signature(
        text_a=tf.constant([i["text_a"] for i in instances]),
        text_b=tf.constant([i["text_b"] for i in instances]),
    )
    return output["probability"].numpy()


def test_raw_text_signature(trained_hermetic):
    model_dir = trained_hermetic["record"]["model_dir"]
    loaded = tf.saved_model.load(model_dir)
    signature = loaded.signatures[export.TEXT_SIGNATURE]
    _, inputs = signature.structured_input_signature
    assert set(inputs) == {"text_a", "text_b"}
    for spec in inputs.values():
        assert spec.dtype == tf.string
        assert spec.shape.as_list() == [None]
    assert signature.structured_outputs["probability"].shape.as_list() == [None]
    probabilities = serve_text(model_dir, load_request("raw-text-signature"))
    assert probabilities.shape == (3,)
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_version_folder_and_config(trained_hermetic):
    model_dir = trained_hermetic["record"]["model_dir"]
    root = trained_hermetic["run_dir"] / "model"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == [model_dir.split("/")[-1]]
    assert model_dir.split("/")[-1].isdigit()
    saved = export.load_saved_config(model_dir)
    assert saved["vocab_size"] == 2000
    assert saved["config"]["preprocess"]["vocab_size"] == 2000


def test_serving_without_label(trained_hermetic):
    model_dir = trained_hermetic["record"]["model_dir"]
    instances = load_request("serving-without-label")
    by_text = serve_text(model_dir, instances)
    serialized = []
    for instance in instances:
        feature = {
            key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[instance[key].encode("utf-8")]))
            for key in ("text_a", "text_b")
        }
        serialized.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    loaded = tf.saved_model.load(model_dir)
    by_example = loaded.signatures[export.EXAMPLE_SIGNATURE](examples=tf.constant(serialized))["probability"]
    np.testing.assert_allclose(by_example.numpy(), by_text, atol=1e-6)


def test_hermetic_export(tmp_path):
    train_file = case("hermetic-export/train.tsv")
    config = make_config([train_file], train={"epochs": 2})
    data_dir = tmp_path / "preprocessed"
    preprocess(config, data_dir)
    record = train_and_evaluate(config, str(data_dir), str(tmp_path / "run"))
    model_dir = record["model_dir"]
    assert (tmp_path / "run" / "model" / model_dir.split("/")[-1] / "assets" / features.VOCABULARY_NAME).exists()
    shutil.rmtree(data_dir)

    script = textwrap.dedent(
        """
        import json, sys
        import tensorflow as tf
        loaded = tf.saved_model.load(sys.argv[1])
        instances = json.load(open(sys.argv[2]))["instances"]
        out = loaded.signatures["serving_default"](
            text_a=tf.constant([i["text_a"] for i in instances]),
            text_b=tf.constant([i["text_b"] for i in instances]),
        )["probability"].numpy().tolist()
        banned = [m for m in sys.modules if m.split(".")[0] in ("tensorflow_transform", "apache_beam", "pairtrain", "pipeline", "trainer")]
        print(json.dumps({"probabilities": out, "banned": banned}))
        """
    )
    process = subprocess.run(
        [sys.executable, "-c", script, model_dir, case("hermetic-export/predict_request.json")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert len(result["probabilities"]) == 3
    assert all(0.0 <= p <= 1.0 for p in result["probabilities"])
    assert result["banned"] == []


def test_parity_with_pipeline(tmp_path):
    """The export's probabilities on raw pairs match the Keras model's on the pipeline's ids."""
    import tensorflow_transform as tft

    train_file = case("hermetic-export/train.tsv")
    pairs_file = tmp_path / "fixed_pairs.tsv"
    pairs_file.write_text(
        "text_a\ttext_b\tlabel\n"
        "kiwi pear fig\tplum apple\t1\n"
        "Plum, APPLE!\tkiwi\t0\n"
        "zzz unseen words\t\t1\n"
        "fig fig fig fig\tpear plum kiwi apple\t0\n"
        "It’s a kiwi\tdon't know\t1\n"
    )
    config = make_config([train_file], [pairs_file], train={"epochs": 2})
    data_dir = tmp_path / "preprocessed"
    preprocess(config, data_dir)
    record = train_and_evaluate(config, str(data_dir), str(tmp_path / "run"))
    model = record["model"]

    # Keras model on the ids the pipeline wrote, keyed by those ids.
    keras_by_ids = {}
    for example in read_examples(data_dir, "eval"):
        inputs = {key: tf.constant([example[key] or []], tf.int64) for key in features.ID_KEYS}
        inputs = {key: value if value.shape[1] else tf.zeros([1, 1], tf.int64) for key, value in inputs.items()}
        key = tuple(tuple(example[k]) for k in features.ID_KEYS)
        keras_by_ids[key] = float(model(inputs, training=False).numpy().reshape(-1)[0])
    assert len(keras_by_ids) == 5

    # The export on raw strings; the transform output is used only to find each pair's ids.
    rows = [line.split("\t") for line in pairs_file.read_text().splitlines()[1:]]
    instances = [{"text_a": a, "text_b": b} for a, b, _ in rows]
    exported = serve_text(record["model_dir"], instances)
    layer = tft.TFTransformOutput(str(data_dir)).transform_features_layer()
    transformed = layer({"text_a": tf.constant([a for a, _, _ in rows]), "text_b": tf.constant([b for _, b, _ in rows])})
    for index in range(len(rows)):
        key = tuple(
            tuple(tf.RaggedTensor.from_sparse(transformed[k])[index].numpy().tolist()) for k in features.ID_KEYS
        )
        assert key in keras_by_ids, f"pair {index} has ids {key}, which the pipeline never wrote"
        assert abs(exported[index] - keras_by_ids[key]) < 1e-5


def test_padding_prediction_differs_from_empty(tmp_path):
    config = make_config([case("padding-id/most_frequent.tsv")], train={"epochs": 1})
    data_dir = tmp_path / "preprocessed"
    preprocess(config, data_dir)
    record = train_and_evaluate(config, str(data_dir), str(tmp_path / "run"))
    probabilities = serve_text(
        record["model_dir"], [{"text_a": "the the the", "text_b": "the"}, {"text_a": "", "text_b": ""}]
    )
    assert probabilities[0] != pytest.approx(probabilities[1], abs=1e-7)
