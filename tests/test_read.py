"""Reading raw records: formats, line numbers, quoting, BOM, CRLF, gzip, labels, rejections."""

import gzip
import json

import pytest

from pipeline import read
from tests.conftest import SHARED_DATA, case, make_config


def parse(path, **input_values):
    config = make_config([path], input=input_values) if input_values else make_config([path])
    return list(read.RecordParser(config).parse_file(str(path)))


def pairs(results):
    return [record for outcome, record in results if outcome == read.OK]


def rejected(results):
    return [record for outcome, record in results if outcome == read.REJECTED]


def test_tsv_with_header(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("text_a\ttext_b\tlabel\nhow are you\thow do you do\t1\nred\tblue\t0\n")
    result = pairs(parse(path))
    assert [(p["text_a"], p["text_b"], p["label"]) for p in result] == [
        ("how are you", "how do you do", 1),
        ("red", "blue", 0),
    ]
    assert [p["line"] for p in result] == [2, 3]


@pytest.mark.parametrize("name", ["quoted_newline.csv", "quoted_newline_crlf.csv"])
def test_quoted_newlines(name):
    path = case(f"quoted-newlines/{name}")
    result = pairs(parse(path, format="csv"))
    assert [p["label"] for p in result] == [1, 0, 1]
    assert [p["line"] for p in result] == [2, 3, 5]
    assert result[1]["text_a"].split() == "first line second line of the same question".split()


def test_byte_order_mark_and_crlf(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes(b"\xef\xbb\xbftext_a\ttext_b\tlabel\r\nalpha\tbeta\t1\r\n")
    result = parse(path)
    assert len(pairs(result)) == 1
    assert pairs(result)[0]["text_b"] == "beta"
    assert pairs(result)[0]["label"] == 1


def test_gzip_input(tmp_path):
    path = tmp_path / "pairs.tsv.gz"
    path.write_bytes(gzip.compress(b"text_a\ttext_b\tlabel\nalpha\tbeta\t0\n"))
    assert [p["text_a"] for p in pairs(parse(path))] == ["alpha"]


def test_jsonl_input(tmp_path):
    path = tmp_path / "pairs.jsonl"
    lines = [
        json.dumps({"q1": "a b", "q2": "c", "dup": 1}),
        "",
        "{not json",
        json.dumps({"q1": "x", "dup": 0}),
    ]
    path.write_text("\n".join(lines) + "\n")
    result = parse(path, format="jsonl", columns={"text_a": "q1", "text_b": "q2", "label": "dup"})
    assert [(p["text_a"], p["label"], p["line"]) for p in pairs(result)] == [("a b", 1, 1)]
    assert [(r["reason"], r["line"]) for r in rejected(result)] == [
        (read.INVALID_JSON, 3),
        (read.MISSING_FIELD, 4),
    ]


def test_label_classes_and_unknown_label(tmp_path):
    path = tmp_path / "nli.tsv"
    path.write_text("a\tb\tENTAILMENT\nc\td\tNEUTRAL\ne\tf\tmaybe\n")
    result = parse(
        path,
        header=False,
        columns={"text_a": 0, "text_b": 1, "label": 2},
        label={"positive": ["ENTAILMENT"], "negative": ["NEUTRAL", "CONTRADICTION"]},
    )
    assert [p["label"] for p in pairs(result)] == [1, 0]
    assert [(r["reason"], r["line"], r["raw"]) for r in rejected(result)] == [
        (read.UNKNOWN_LABEL, 3, "e\tf\tmaybe\n")
    ]


def test_label_threshold(tmp_path):
    path = tmp_path / "scores.tsv"
    path.write_text("a\tb\t4.0\nc\td\t3.9\ne\tf\thigh\n")
    result = parse(path, header=False, columns={"text_a": 0, "text_b": 1, "label": 2}, label={"threshold": 4.0})
    assert [p["label"] for p in pairs(result)] == [1, 0]
    assert [r["reason"] for r in rejected(result)] == [read.INVALID_LABEL]


def test_column_count_mismatch(tmp_path):
    path = tmp_path / "ragged.tsv"
    path.write_text("text_a\ttext_b\tlabel\nonly one\n\ta\tb\t1\textra\n")
    result = parse(path)
    assert [(r["reason"], r["line"]) for r in rejected(result)] == [
        (read.MISSING_COLUMNS, 2),
        (read.EXTRA_COLUMNS, 3),
    ]


def test_empty_text_policy(tmp_path):
    path = case("empty-text-side/empty_sides.tsv")
    accepted = parse(path)
    assert len(pairs(accepted)) == 4
    rejecting = list(
        read.RecordParser(make_config([path], preprocess={"empty_text": "reject"})).parse_file(path)
    )
    assert len(pairs(rejecting)) == 1
    assert [r["line"] for r in rejected(rejecting)] == [2, 3, 4]
    assert {r["reason"] for r in rejected(rejecting)} == {read.EMPTY_TEXT}


def test_undecodable_line_is_rejected_with_location():
    path = case("legacy-encoding/cp1252.tsv")
    result = rejected(parse(path))
    assert [r["line"] for r in result] == [2, 3, 4]
    assert result[0]["reason"] == read.DECODE_ERROR
    assert "line 2" in result[0]["detail"]


def test_configured_encoding_decodes():
    result = pairs(parse(case("legacy-encoding/cp1252.tsv"), encoding="cp1252"))
    assert [p["text_a"] for p in result] == ["café au lait", "naïve question", "it’s raining"]


def test_unknown_header_column(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("q1\tq2\tlabel\na\tb\t1\n")
    with pytest.raises(read.InputError, match="column 'text_a' for text_a is not in the header row"):
        parse(path)


def test_glob_without_match(tmp_path):
    with pytest.raises(read.InputError, match="no train input file matches"):
        read.expand_patterns([str(tmp_path / "*.tsv")], "train input")


def test_pair_key_is_order_free():
    from pipeline import quality

    def key(a, b):
        return quality.pair_key({"text_a": a, "text_b": b})

    assert key("a b", "c") == key("c", "a b")
    assert key(" a b ", "c") == key("a b", "c")
    assert key("x", "y") != key("x", "z")
    assert 0.0 <= quality.unit_fraction(key("x", "y")) < 1.0


def test_unclosed_quote_rejected(tmp_path):
    path = tmp_path / "quote.tsv"
    rows = ["text_a\ttext_b\tlabel", "first\tpair\t1", '"never closed\tsecond\t0']
    rows += [f"question {i}\tanswer {i}\t1" for i in range(4)]
    rows += ['closing" here\tlast\t0', "after\tall\t1"]
    path.write_text("\n".join(rows) + "\n")
    result = parse(path)
    assert [p["line"] for p in pairs(result)] == [2, 9]
    assert [(r["reason"], r["line"]) for r in rejected(result)] == [(read.UNBALANCED_QUOTE, 3)]
    assert "line 3 to line 8" in rejected(result)[0]["detail"]
    assert rejected(result)[0]["raw"].count("\n") == 6


def test_quoted_multiline_field_without_delimiter_kept(tmp_path):
    path = tmp_path / "ok.tsv"
    path.write_text('text_a\ttext_b\tlabel\n"two\nlines"\tb\t1\n')
    assert [p["text_a"] for p in pairs(parse(path))] == ["two\nlines"]


def test_non_finite_threshold_label(tmp_path):
    path = tmp_path / "scores.tsv"
    path.write_text("a\tb\tnan\nc\td\tinf\ne\tf\t4.5\n")
    result = parse(path, header=False, columns={"text_a": 0, "text_b": 1, "label": 2}, label={"threshold": 4.0})
    assert [p["label"] for p in pairs(result)] == [1]
    assert [r["reason"] for r in rejected(result)] == [read.INVALID_LABEL, read.INVALID_LABEL]


def test_jsonl_text_must_be_string(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"text_a": ["x", "y"], "text_b": "z", "label": 1}) + "\n")
    result = rejected(parse(path, format="jsonl"))
    assert [r["reason"] for r in result] == [read.INVALID_JSON]
    assert "is a list, not a string" in result[0]["detail"]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")
def test_mrpc_file_reads_whole():
    import pathlib

    config_path = pathlib.Path(__file__).resolve().parents[1] / "configs" / "mrpc.yaml"
    from pairtrain import config as config_lib

    config = config_lib.load(str(config_path))
    path = str(SHARED_DATA / "mrpc" / "msr_paraphrase_test.txt")
    result = list(read.RecordParser(config).parse_file(path))
    assert len(pairs(result)) == 1725
    assert rejected(result) == []
    assert sum(p["label"] for p in pairs(result)) == 1147
    assert not pairs(result)[0]["text_a"].startswith("\ufeff")


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")
def test_sick_file_reads_whole():
    import pathlib

    from pairtrain import config as config_lib

    config_path = pathlib.Path(__file__).resolve().parents[1] / "configs" / "sick.yaml"
    config = config_lib.load(str(config_path))
    result = list(read.RecordParser(config).parse_file(str(SHARED_DATA / "sick" / "SICK_trial.txt")))
    assert len(pairs(result)) == 500
    assert rejected(result) == []
