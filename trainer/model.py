"""The shared-embedding pair model.

One Embedding(vocab_size, embedding_dim) layer is applied to both texts, each
side is averaged over its non-padding tokens, the two averages are
concatenated, and a Dense(1, sigmoid) layer returns the probability that the
pair is a match. With vocab_size 2000 and embedding_dim 128 that is
2000 * 128 + 2 * 128 + 1 = 256,257 parameters.
"""

import tensorflow as tf

from pipeline import features
from trainer.keras import keras


class MaskedAverage(keras.layers.Layer):
    """Average token vectors over non-padding positions.

    Divides by max(count, 1), so a text with no tokens gives a zero vector
    rather than NaN (GlobalAveragePooling1D divides 0 by 0 there).
    """

    def call(self, inputs):
        ids, vectors = inputs
        mask = tf.cast(tf.not_equal(ids, features.PADDING_ID), vectors.dtype)[..., tf.newaxis]
        total = tf.reduce_sum(vectors * mask, axis=1)
        count = tf.reduce_sum(mask, axis=1)
        return total / tf.maximum(count, 1.0)


def build_model(vocab_size: int, embedding_dim: int) -> keras.Model:
    """Build the uncompiled model; its inputs are the id features named in `features`."""
    ids_a = keras.Input(shape=(None,), dtype=tf.int64, name=features.TEXT_A_IDS)
    ids_b = keras.Input(shape=(None,), dtype=tf.int64, name=features.TEXT_B_IDS)
    embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="shared_embedding")
    average = MaskedAverage(name="masked_average")
    vector_a = average([ids_a, embedding(ids_a)])
    vector_b = average([ids_b, embedding(ids_b)])
    joined = keras.layers.Concatenate(name="concatenate")([vector_a, vector_b])
    probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(joined)
    return keras.Model(inputs={features.TEXT_A_IDS: ids_a, features.TEXT_B_IDS: ids_b}, outputs=probability)


def compile_model(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
