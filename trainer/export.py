"""Export a trained model as a SavedModel that takes raw strings.

The SavedModel embeds the tf.Transform graph and its vocabulary asset, so it
serves with TensorFlow alone, after the preprocessing output is deleted.
Signatures:

    serving_default(text_a: string[None], text_b: string[None]) -> probability: float32[None]
    serve_examples(examples: string[None]) -> probability: float32[None]

`serve_examples` takes serialized tf.train.Examples with text_a and text_b;
a label is not needed. The resolved config is saved in
assets.extra/pairtrain_config.json, the folder TensorFlow Serving leaves alone.
"""

import json
import logging
import os
import time

import tensorflow as tf

from pipeline import features
from pipeline.transform import raw_serving_feature_spec
from trainer.data import dense_ids

logger = logging.getLogger(__name__)

CONFIG_FILE = os.path.join("assets.extra", "pairtrain_config.json")
TEXT_SIGNATURE = "serving_default"
EXAMPLE_SIGNATURE = "serve_examples"


class PairServingModule(tf.Module):
    """The transform layer and the Keras model behind the serving signatures."""

    def __init__(self, model, tft_output):
        super().__init__()
        self.model = model
        self.transform_layer = tft_output.transform_features_layer()

    def _probability(self, raw_features):
        transformed = self.transform_layer(raw_features)
        inputs = {key: dense_ids(transformed[key]) for key in features.ID_KEYS}
        return {"probability": tf.reshape(self.model(inputs, training=False), [-1])}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name=features.TEXT_A),
            tf.TensorSpec([None], tf.string, name=features.TEXT_B),
        ]
    )
    def serve_text(self, text_a, text_b):
        return self._probability({features.TEXT_A: text_a, features.TEXT_B: text_b})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        return self._probability(tf.io.parse_example(examples, raw_serving_feature_spec()))


def next_version(export_root: str) -> int:
    """Return a version number above every numbered folder in `export_root`, based on the time."""
    existing = [int(name.rstrip("/")) for name in _list(export_root) if name.rstrip("/").isdigit()]
    return max([int(time.time()), *(v + 1 for v in existing)])


def _list(path: str) -> list[str]:
    return tf.io.gfile.listdir(path) if tf.io.gfile.isdir(path) else []


def export_model(model, tft_output, export_root: str, config: dict) -> str:
    """Save the serving SavedModel to export_root/<version>/ and return that path.

    The model is written to a temporary folder and renamed into place, so a
    numbered folder is always a complete SavedModel.
    """
    version = next_version(export_root)
    final_dir = os.path.join(export_root, str(version))
    temp_dir = os.path.join(export_root, f".tmp-{version}")
    tf.io.gfile.makedirs(export_root)
    module = PairServingModule(model, tft_output)
    signatures = {
        TEXT_SIGNATURE: module.serve_text.get_concrete_function(),
        EXAMPLE_SIGNATURE: module.serve_examples.get_concrete_function(),
    }
    tf.saved_model.save(module, temp_dir, signatures=signatures)
    tf.io.gfile.makedirs(os.path.join(temp_dir, "assets.extra"))
    with tf.io.gfile.GFile(os.path.join(temp_dir, CONFIG_FILE), "w") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
    tf.io.gfile.rename(temp_dir, final_dir)
    logger.info("Exported the serving model to %s", final_dir)
    return final_dir


def latest_version_dir(model_dir: str) -> str:
    """Return `model_dir` if it is a SavedModel, else its highest numbered version folder."""
    if tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        return model_dir
    versions = sorted(int(n.rstrip("/")) for n in _list(model_dir) if n.rstrip("/").isdigit())
    if not versions:
        raise FileNotFoundError(
            f"no SavedModel in {model_dir}: expected saved_model.pb or numbered version folders"
        )
    return os.path.join(model_dir, str(versions[-1]))


def load_saved_config(version_dir: str) -> dict:
    with tf.io.gfile.GFile(os.path.join(version_dir, CONFIG_FILE)) as handle:
        return json.load(handle)
