"""Tokenization in the TensorFlow graph.

The same ops run in the Beam pipeline (inside `preprocessing_fn`) and in the
exported SavedModel, so training and serving tokenize identically. The rule:

1. Lowercase with `tf.strings.lower(..., encoding="utf-8")`, which folds case
   for every script (without `encoding` only ASCII is folded). No other
   Unicode normalization is applied.
2. Drop punctuation (Unicode category P), except an apostrophe (' or ’) with a
   letter on both sides, so "don't" and "it’s" stay one token. Symbols such as
   $, % and + (category S) are kept as part of their token.
3. Split on runs of whitespace, Unicode spaces and line breaks included.
"""

import tensorflow as tf

# Control characters stand in for kept apostrophes while punctuation is
# removed; any that occur in the input are turned into spaces first.
_STRAIGHT_MARK = "\x01"
_CURLY_MARK = "\x02"


def _protect_apostrophes(text: tf.Tensor, apostrophe: str, mark: str) -> tf.Tensor:
    pattern = r"(\pL)" + apostrophe + r"(\pL)"
    replacement = r"\1" + mark + r"\2"
    # Two passes, because RE2 matches do not overlap: in "a'b'c" the first
    # pass consumes the "b" that the second apostrophe needs.
    text = tf.strings.regex_replace(text, pattern, replacement)
    return tf.strings.regex_replace(text, pattern, replacement)


def normalize(text: tf.Tensor) -> tf.Tensor:
    """Lowercase `text` and replace punctuation with spaces, keeping in-word apostrophes."""
    text = tf.strings.regex_replace(text, "[\x01\x02]", " ")
    text = tf.strings.lower(text, encoding="utf-8")
    text = _protect_apostrophes(text, "'", _STRAIGHT_MARK)
    text = _protect_apostrophes(text, "’", _CURLY_MARK)
    text = tf.strings.regex_replace(text, r"\pP", " ")
    text = tf.strings.regex_replace(text, _STRAIGHT_MARK, "'")
    text = tf.strings.regex_replace(text, _CURLY_MARK, "’")
    return tf.strings.regex_replace(text, r"[\s\p{Z}]+", " ")


def tokenize(text: tf.Tensor) -> tf.RaggedTensor:
    """Split a 1-D string tensor into a ragged [batch, None] tensor of tokens."""
    return tf.strings.split(tf.strings.strip(normalize(text)))
