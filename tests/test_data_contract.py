"""The bad-input contract: every record ends in a split or the dead letters, with a reason."""

import gzip
import json

import pytest

from pipeline import quality, read
from pipeline.layout import COMPLETE_MARKER
from pipeline.publish import PreprocessError
from tests.conftest import SHARED_DATA, REPO, case, make_config, preprocess


def dead_letters(output_dir) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted((output_dir / "rejected").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def good_rows(count: int, prefix: str = "topic") -> str:
    return "".join(f"how do i {prefix} {i}\twhat is {prefix} {i} about\t{i % 2}\n" for i in range(count))


def test_mixed_faults_all_accounted(tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_bytes(
        b"\xef\xbb\xbftext_a\ttext_b\tlabel\r\n"
        + good_rows(40).replace("\n", "\r\n").encode()
        + b"too\tfew\r\n"  # line 42: missing column
        + b"one\ttwo\t1\textra\r\n"  # line 43: extra column
        + b"label\tunknown\tmaybe\r\n"  # line 44: unknown label
        + b"\tempty side\t1\r\n"  # line 45: empty text, rejected by option
        + ("long " * 20).encode() + b"\tshort\t0\r\n"  # line 46: too long, rejected by option
        + b"how do i topic 3\twhat is topic 3 about\t1\r\n"  # line 47: exact duplicate of line 5
        + b"what is topic 4 about\thow do i topic 4\t1\r\n"  # line 48: swapped duplicate of line 6, other label
        + b"caf\xe9\tbad bytes\t1\r\n"  # line 49: undecodable, rejected by option
    )
    config = make_config(
        [path],
        input={"decode_errors": "reject"},
        preprocess={
            "empty_text": "reject",
            "long_text": "reject",
            "max_tokens": 10,
            "drop_duplicates": True,
            "max_reject_fraction": 0.2,
        },
    )
    summary = preprocess(config, tmp_path / "out")
    records = summary["records"]
    assert records["read"] == 48
    assert records["written"]["train"] == 40
    assert records["rejected"]["by_reason"] == {
        read.DECODE_ERROR: 1,
        read.EMPTY_TEXT: 1,
        read.EXTRA_COLUMNS: 1,
        read.MISSING_COLUMNS: 1,
        read.UNKNOWN_LABEL: 1,
        quality.DUPLICATE: 2,
        quality.TOO_LONG: 1,
    }
    assert records["read"] == sum(records["written"].values()) + records["rejected"]["total"]
    assert summary["duplicates"] == {"exact": 1, "swapped": 1, "conflicting_labels": 1, "dropped": 2}

    letters = dead_letters(tmp_path / "out")
    assert sorted((d["line"], d["reason"]) for d in letters) == [
        (42, read.MISSING_COLUMNS),
        (43, read.EXTRA_COLUMNS),
        (44, read.UNKNOWN_LABEL),
        (45, read.EMPTY_TEXT),
        (46, quality.TOO_LONG),
        (47, quality.DUPLICATE),
        (48, quality.DUPLICATE),
        (49, read.DECODE_ERROR),
    ]
    for letter in letters:
        assert letter["source"] == str(path)
        assert letter["raw"]
        assert letter["detail"]
    duplicate = [d for d in letters if d["line"] == 48][0]
    assert duplicate["detail"] == f"swapped duplicate of {path} line 6"


def test_duplicates_counted_not_dropped(tmp_path):
    path = tmp_path / "dups.tsv"
    path.write_text("text_a\ttext_b\tlabel\n" + good_rows(10) + "how do i topic 1\twhat is topic 1 about\t1\n")
    summary = preprocess(make_config([path]), tmp_path / "out")
    assert summary["duplicates"]["exact"] == 1
    assert summary["duplicates"]["dropped"] == 0
    assert summary["records"]["written"]["train"] == 11


def test_duplicates_do_not_count_as_faults(tmp_path):
    path = tmp_path / "dups.tsv"
    path.write_text("text_a\ttext_b\tlabel\n" + good_rows(10) * 2)
    config = make_config([path], preprocess={"drop_duplicates": True, "max_reject_fraction": 0.0})
    summary = preprocess(config, tmp_path / "out")
    assert summary["records"]["rejected"]["by_reason"] == {quality.DUPLICATE: 10}
    assert summary["records"]["written"]["train"] == 10


def test_long_text_truncated_and_counted(tmp_path):
    path = tmp_path / "long.tsv"
    path.write_text("text_a\ttext_b\tlabel\n" + ("word " * 30) + "\tshort\t1\nsmall\ttext\t0\n")
    summary = preprocess(make_config([path], preprocess={"max_tokens": 8}), tmp_path / "out")
    assert summary["records"]["written"]["train"] == 2
    assert summary["truncated_texts"]["train"] == {"text_a": 1}
    assert summary["token_length_percentiles"]["train"]["text_a"]["p100"] == 30


def test_threshold_label_not_a_number(tmp_path):
    path = tmp_path / "scores.tsv"
    path.write_text("".join(f"a {i}\tb {i}\t{i % 5}.5\n" for i in range(30)) + "c\td\tn/a\n")
    config = make_config(
        [path], input={"header": False, "columns": {"text_a": 0, "text_b": 1, "label": 2}, "label": {"threshold": 4.0}}
    )
    summary = preprocess(config, tmp_path / "out")
    assert summary["records"]["rejected"]["by_reason"] == {read.INVALID_LABEL: 1}
    assert summary["positive_labels"]["train"] == 6


def test_gzip_input_through_pipeline(tmp_path):
    path = tmp_path / "pairs.tsv.gz"
    path.write_bytes(gzip.compress(("text_a\ttext_b\tlabel\n" + good_rows(12)).encode()))
    summary = preprocess(make_config([str(tmp_path / "*.tsv.gz")]), tmp_path / "out")
    assert summary["records"]["written"]["train"] == 12


def test_decode_errors_fail_by_default(tmp_path):
    with pytest.raises(PreprocessError, match="input.decode_errors=reject"):
        preprocess(make_config([case("legacy-encoding/cp1252.tsv")]), tmp_path)
    assert not (tmp_path / COMPLETE_MARKER).exists()


def leaky_pairs() -> str:
    """Pairs that chain texts together: hub question i appears in five pairs."""
    rows = ["text_a\ttext_b\tlabel"]
    for hub in range(30):
        for other in range(5):
            rows.append(f"hub question {hub}\tvariant {hub} number {other}\t{other % 2}")
    return "\n".join(rows) + "\n"


def test_hash_split_reports_leaks(tmp_path):
    path = tmp_path / "leaky.tsv"
    path.write_text(leaky_pairs())
    summary = preprocess(make_config([path], preprocess={"eval_fraction": 0.3}), tmp_path / "out")
    assert summary["split"]["mode"] == "hash"
    assert summary["split"]["eval_texts"] > 0
    assert summary["split"]["eval_texts_in_train"] > 0


def test_group_split_has_no_leaks(tmp_path):
    path = tmp_path / "leaky.tsv"
    path.write_text(leaky_pairs())
    config = make_config([path], preprocess={"eval_fraction": 0.3, "split": "group"})
    summary = preprocess(config, tmp_path / "out")
    split = summary["split"]
    assert split["mode"] == "group"
    assert split["eval_texts"] > 0
    assert split["eval_texts_in_train"] == 0
    assert split["components"] == 30
    assert split["largest_component_pairs"] == 5
    written = summary["records"]["written"]
    assert written["eval"] % 5 == 0
    assert split["realized_fraction"]["eval"] == pytest.approx(written["eval"] / 150)
    assert 0.1 < split["realized_fraction"]["eval"] < 0.5


def test_group_split_follows_tokenized_text(tmp_path):
    # "Hub, question!" and "hub question" tokenize alike, so they join one group.
    path = tmp_path / "case.tsv"
    rows = ["text_a\ttext_b\tlabel"]
    for i in range(20):
        rows.append(f"Hub, Question {i}!\tfirst {i}\t1")
        rows.append(f"hub question {i}\tsecond {i}\t0")
    path.write_text("\n".join(rows) + "\n")
    summary = preprocess(make_config([path], preprocess={"eval_fraction": 0.3, "split": "group"}), tmp_path / "out")
    assert summary["split"]["components"] == 20
    assert summary["split"]["eval_texts_in_train"] == 0


@pytest.mark.e2e
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")
@pytest.mark.parametrize(
    "config_name, train, evaluation",
    [
        ("mrpc.yaml", "mrpc/msr_paraphrase_train.txt", "mrpc/msr_paraphrase_test.txt"),
        ("sick.yaml", "sick/SICK_train.txt", "sick/SICK_test_annotated.txt"),
    ],
)
def test_real_corpora_fully_accounted(tmp_path, config_name, train, evaluation):
    from pairtrain import config as config_lib

    config = config_lib.load(str(REPO / "configs" / config_name))
    config.input.train = [str(SHARED_DATA / train)]
    config.input.eval = [str(SHARED_DATA / evaluation)]
    summary = preprocess(config, tmp_path / "out")
    records = summary["records"]
    assert records["rejected"]["total"] == 0
    assert records["read"] == sum(records["written"].values())
    lines = sum(len((SHARED_DATA / name).read_bytes().splitlines()) for name in (train, evaluation))
    assert records["read"] == lines
