"""Tokenization rule: UTF-8 lowercase, punctuation dropped, in-word apostrophes kept, whitespace split."""

import pytest
import tensorflow as tf

from pipeline.tokenization import tokenize


def tokens(text: str) -> list[str]:
    return [token.decode("utf-8") for token in tokenize(tf.constant([text])).to_list()[0]]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("École ÉCOLE école", ["école", "école", "école"]),
        ("ΑΘΗΝΑ ŽELVA", ["αθηνα", "želva"]),
        ("Don't stop", ["don't", "stop"]),
        ("it’s fine", ["it’s", "fine"]),
        ("rock'n'roll", ["rock'n'roll"]),
        ("'quoted' words’", ["quoted", "words"]),
        ("Hello, world! (really?)", ["hello", "world", "really"]),
        ("a--b...c", ["a", "b", "c"]),
        ("$2.5 billion", ["$2", "5", "billion"]),
        ("first line\r\nsecond\u00a0line\tend", ["first", "line", "second", "line", "end"]),
        ("   ", []),
        ("", []),
    ],
)
def test_tokenize_cases(text, expected):
    assert tokens(text) == expected


def test_tokenize_batch_is_ragged():
    result = tokenize(tf.constant(["one two", "", "three"]))
    assert isinstance(result, tf.RaggedTensor)
    assert result.row_lengths().numpy().tolist() == [2, 0, 1]


def test_tokenize_control_marks_in_input():
    # The control characters used internally as apostrophe marks must not leak.
    assert tokens("a\x01b c\x02d") == ["a", "b", "c", "d"]
