"""The tf.Transform `preprocessing_fn`: tokens of both texts, one shared vocabulary, id layout."""

import tensorflow as tf
import tensorflow_transform as tft

from pipeline import features
from pipeline.tokenization import tokenize

RAW_FEATURE_SPEC = {
    features.TEXT_A: tf.io.FixedLenFeature([], tf.string),
    features.TEXT_B: tf.io.FixedLenFeature([], tf.string),
    features.LABEL: tf.io.FixedLenFeature([], tf.int64),
}


def raw_serving_feature_spec() -> dict:
    """Return the raw feature spec without the label, for serving requests."""
    spec = dict(RAW_FEATURE_SPEC)
    del spec[features.LABEL]
    return spec


def make_preprocessing_fn(vocab_size: int, min_count: int, max_tokens: int):
    """Return a `preprocessing_fn` for the given vocabulary and length limits.

    The vocabulary is computed over the tokens of text_a and text_b together,
    in tf.Transform's order: count descending, ties broken by reverse byte
    order of the token, which is deterministic. Ids are laid out as in
    `features`: 0 padding, 1 out-of-vocabulary, then the top vocab_size - 2
    tokens, so every id is below vocab_size.
    """
    top_k = features.max_vocabulary_tokens(vocab_size)

    def preprocessing_fn(inputs):
        tokens = {key: tokenize(inputs[key]) for key in features.TEXT_KEYS}
        vocabulary = tft.vocabulary(
            tf.concat([tokens[features.TEXT_A], tokens[features.TEXT_B]], axis=1),
            top_k=top_k,
            # tf.Transform warns that a threshold of 1 is a no-op; pass None then.
            frequency_threshold=min_count if min_count > 1 else None,
            vocab_filename=features.VOCABULARY_NAME,
        )
        outputs = {features.LABEL: inputs[features.LABEL]}
        for key in features.TEXT_KEYS:
            truncated = tokens[key][:, :max_tokens]
            looked_up = tft.apply_vocabulary(truncated, vocabulary, default_value=-1)
            ids = tf.ragged.map_flat_values(
                lambda x: tf.where(x < 0, tf.constant(features.OOV_ID, tf.int64), x + features.RESERVED_IDS),
                looked_up,
            )
            # A SparseTensor becomes a VarLenFeature in the transformed schema:
            # variable-length id lists that the trainer pads per batch.
            outputs[features.ids_key(key)] = ids.to_sparse()
            outputs[features.num_tokens_key(key)] = tokens[key].row_lengths()
        return outputs

    return preprocessing_fn
