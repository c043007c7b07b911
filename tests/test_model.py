"""The shared-embedding model: shape, parameter count, masking of padding and empty texts."""

import numpy as np
import tensorflow as tf

from pipeline import features
from trainer.keras import keras
from trainer.model import MaskedAverage, build_model


def test_default_parameter_count():
    model = build_model(vocab_size=2000, embedding_dim=128)
    assert model.count_params() == 256_257


def test_single_shared_embedding():
    model = build_model(vocab_size=2000, embedding_dim=128)
    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    assert len(embeddings) == 1
    assert embeddings[0].input_dim == 2000
    embedding_weights = [w for w in model.weights if "embedding" in w.name]
    assert len(embedding_weights) == 1
    assert embedding_weights[0].shape == (2000, 128)


def test_masked_average_ignores_padding():
    ids = tf.constant([[5, 7, features.PADDING_ID], [features.PADDING_ID] * 3], tf.int64)
    vectors = tf.constant(
        [[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[9.0, 9.0], [9.0, 9.0], [9.0, 9.0]]]
    )
    result = MaskedAverage()([ids, vectors]).numpy()
    np.testing.assert_allclose(result[0], [2.0, 3.0])
    np.testing.assert_allclose(result[1], [0.0, 0.0])


def test_empty_texts_give_finite_probability():
    model = build_model(vocab_size=50, embedding_dim=4)
    inputs = {
        features.TEXT_A_IDS: tf.zeros([2, 0], tf.int64),
        features.TEXT_B_IDS: tf.constant([[3, 4], [0, 0]], tf.int64),
    }
    output = model(inputs).numpy()
    assert output.shape == (2, 1)
    assert np.isfinite(output).all()


def test_vocab_size_sets_input_dim():
    model = build_model(vocab_size=300, embedding_dim=8)
    assert model.get_layer("shared_embedding").input_dim == 300
    assert model.count_params() == 300 * 8 + 2 * 8 + 1
