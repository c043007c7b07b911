"""The preprocessing pipeline on real Beam (in-process runner) and real tf.Transform."""

import json

import pytest

from pairtrain.config import ConfigError
from pipeline import features, read
from pipeline.layout import COMPLETE_MARKER, RUNNING_MARKER, SUMMARY_FILE
from pipeline.publish import PreprocessError
from tests.conftest import case, make_config, preprocess, read_examples, vocabulary


def test_unicode_case_vocabulary(tmp_path):
    summary = preprocess(make_config([case("unicode-case/mixed_case.tsv")]), tmp_path)
    assert sorted(vocabulary(tmp_path)) == sorted(["école", "αθηνα", "želva"])
    assert summary["vocabulary_tokens"] == 3


def test_summary_counts_and_runner(tmp_path):
    summary = preprocess(make_config([case("hermetic-export/train.tsv")]), tmp_path)
    assert summary["status"] == "complete"
    assert summary["runner"] == "FnApiRunner"
    assert summary["records"]["read"] == 10
    assert summary["records"]["written"] == {"train": 10, "validation": 0, "eval": 0}
    assert summary["records"]["rejected"] == {"total": 0, "by_reason": {}}
    assert summary["vocab_size"] == 2000
    assert summary["out_of_vocabulary_rate"]["train"] == 0.0
    assert summary["token_length_percentiles"]["train"]["text_a"]["p100"] == 3
    assert (tmp_path / COMPLETE_MARKER).exists()
    assert json.loads((tmp_path / SUMMARY_FILE).read_text()) == summary


@pytest.mark.parametrize(
    "name, min_count",
    [("empty-vocabulary/few_rows.tsv", 100), ("empty-vocabulary/all_empty.tsv", 1)],
)
def test_empty_vocabulary_fails(tmp_path, name, min_count):
    config = make_config([case(name)], preprocess={"min_count": min_count})
    with pytest.raises(PreprocessError, match="the vocabulary is empty"):
        preprocess(config, tmp_path)
    assert not (tmp_path / COMPLETE_MARKER).exists()
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert summary["status"] == "failed"
    assert "vocabulary is empty" in summary["error"]


def test_variable_lengths_token_counts(tmp_path):
    preprocess(make_config([case("variable-lengths/var_lengths.tsv")]), tmp_path)
    examples = read_examples(tmp_path, "train")
    counts = sorted((len(e[features.TEXT_A_IDS]), len(e[features.TEXT_B_IDS])) for e in examples)
    assert counts == sorted([(1, 4), (7, 1), (3, 0)])


def test_variable_lengths_trainer_batches(tmp_path):
    from trainer.data import PreprocessedData

    preprocess(make_config([case("variable-lengths/var_lengths.tsv")]), tmp_path)
    data = PreprocessedData(str(tmp_path))
    inputs, labels = next(iter(data.dataset("train", batch_size=3)))
    ids_a = inputs[features.TEXT_A_IDS].numpy()
    ids_b = inputs[features.TEXT_B_IDS].numpy()
    assert ids_a.shape == (3, 7)
    assert ids_b.shape == (3, 4)
    counts = sorted(zip((ids_a != features.PADDING_ID).sum(1).tolist(), (ids_b != features.PADDING_ID).sum(1).tolist()))
    assert counts == sorted([(1, 4), (7, 1), (3, 0)])
    assert labels.shape == (3, 1)


def test_padding_id_never_a_token(tmp_path):
    preprocess(make_config([case("padding-id/most_frequent.tsv")]), tmp_path)
    assert vocabulary(tmp_path)[0] == "the"
    examples = read_examples(tmp_path, "train")
    for example in examples:
        for key in features.ID_KEYS:
            assert features.PADDING_ID not in example[key]
            assert features.OOV_ID not in example[key]
    the_row = [e for e in examples if len(e[features.TEXT_A_IDS]) == 3][0]
    assert the_row[features.TEXT_A_IDS] == [features.RESERVED_IDS] * 3


def test_oov_id_range(tmp_path):
    summary = preprocess(make_config([case("oov-id-range/many_tokens.tsv")]), tmp_path)
    assert summary["vocabulary_tokens"] == 2000 - features.RESERVED_IDS
    assert summary["max_id"] == 1999
    examples = read_examples(tmp_path, "train")
    all_ids = [i for e in examples for key in features.ID_KEYS for i in e[key]]
    assert max(all_ids) < 2000
    assert features.OOV_ID in all_ids
    assert len(vocabulary(tmp_path)) == 1998


def test_trainer_rejects_vocab_size_mismatch(tmp_path):
    from trainer.data import DataError, PreprocessedData

    preprocess(make_config([case("oov-id-range/many_tokens.tsv")]), tmp_path)
    summary_path = tmp_path / SUMMARY_FILE
    summary = json.loads(summary_path.read_text())
    summary["vocab_size"] = 1000
    summary_path.write_text(json.dumps(summary))
    with pytest.raises(DataError, match="exceeds vocab_size=1000"):
        PreprocessedData(str(tmp_path))


def test_small_vocab_size_caps_ids(tmp_path):
    summary = preprocess(make_config([case("oov-id-range/many_tokens.tsv")], preprocess={"vocab_size": 50}), tmp_path)
    assert summary["vocabulary_tokens"] == 48
    assert summary["max_id"] == 49
    assert vocabulary(tmp_path)[0] == "common"


def test_vocabulary_from_train_split_only(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("text_a\ttext_b\tlabel\nalpha beta\tgamma\t1\nalpha\tbeta\t0\n")
    evaluation = tmp_path / "eval.tsv"
    evaluation.write_text("text_a\ttext_b\tlabel\nzeta eta\talpha\t1\n")
    summary = preprocess(make_config([train], [evaluation]), tmp_path / "out")
    assert sorted(vocabulary(tmp_path / "out")) == ["alpha", "beta", "gamma"]
    assert summary["out_of_vocabulary_rate"]["eval"] == pytest.approx(2 / 3)
    assert summary["out_of_vocabulary_rate"]["train"] == 0.0


def test_hash_split_keeps_swapped_pairs_together(tmp_path):
    rows = ["text_a\ttext_b\tlabel"]
    for i in range(60):
        rows.append(f"question {i} about tea\tanswer {i} on coffee\t{i % 2}")
        rows.append(f"answer {i} on coffee\tquestion {i} about tea\t{i % 2}")
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(rows) + "\n")
    config = make_config([path], preprocess={"eval_fraction": 0.3, "validation_fraction": 0.2})
    summary = preprocess(config, tmp_path / "out")
    written = summary["records"]["written"]
    assert sum(written.values()) == 120
    for split, count in written.items():
        assert count % 2 == 0, f"{split} holds {count} pairs: a swapped pair was split"
    assert written["eval"] > 0
    assert written["validation"] > 0
    again = preprocess(config, tmp_path / "again")
    assert again["records"]["written"] == written


def test_quoted_newlines_pipeline(tmp_path):
    results = {}
    for name in ("quoted_newline.csv", "quoted_newline_crlf.csv"):
        out = tmp_path / name
        preprocess(make_config([case(f"quoted-newlines/{name}")], input={"format": "csv"}), out)
        tokens = vocabulary(out)
        assert not [t for t in tokens if "\r" in t or "\n" in t]
        examples = read_examples(out, "train")
        assert sorted(e[features.LABEL] for e in examples) == [0, 1, 1]
        results[name] = (sorted(tokens), sorted(str(e) for e in examples))
    assert results["quoted_newline.csv"] == results["quoted_newline_crlf.csv"]
    vocab = results["quoted_newline.csv"][0]
    for token in "first line second of the same question".split():
        assert token in vocab


def test_legacy_encoding_fails_without_output(tmp_path):
    with pytest.raises(PreprocessError) as error:
        preprocess(make_config([case("legacy-encoding/cp1252.tsv")]), tmp_path)
    message = str(error.value)
    assert "cp1252.tsv" in message
    assert "line 2" in message
    assert "input.encoding" in message
    assert not (tmp_path / COMPLETE_MARKER).exists()


def test_legacy_encoding_with_cp1252(tmp_path):
    summary = preprocess(make_config([case("legacy-encoding/cp1252.tsv")], input={"encoding": "cp1252"}), tmp_path)
    assert summary["records"]["written"]["train"] == 3
    tokens = vocabulary(tmp_path)
    for token in ("café", "naïve", "it’s"):
        assert token in tokens


def test_rejected_records_kept_and_counted(tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_text(
        "text_a\ttext_b\tlabel\n"
        + "".join(f"good pair {i}\tother text {i}\t{i % 2}\n" for i in range(50))
        + "bad label\trow\tmaybe\n"
        + "missing column\n"
    )
    summary = preprocess(make_config([path]), tmp_path / "out")
    assert summary["records"]["read"] == 52
    assert summary["records"]["rejected"]["by_reason"] == {read.MISSING_COLUMNS: 1, read.UNKNOWN_LABEL: 1}
    dead = [json.loads(line) for f in (tmp_path / "out" / "rejected").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted((d["reason"], d["line"]) for d in dead) == [(read.MISSING_COLUMNS, 53), (read.UNKNOWN_LABEL, 52)]
    assert all(d["source"] == str(path) for d in dead)


def test_reject_fraction_limit(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("text_a\ttext_b\tlabel\na\tb\t1\nc\td\tx\ne\tf\ty\n")
    with pytest.raises(PreprocessError, match="2 of 3 train input records"):
        preprocess(make_config([path]), tmp_path / "out")


def test_reject_fraction_per_input(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("text_a\ttext_b\tlabel\n" + "".join(f"a{i}\tb{i}\t1\n" for i in range(4)) + "c\td\tx\ne\tf\ty\n")
    evaluation = tmp_path / "eval.tsv"
    evaluation.write_text("text_a\ttext_b\tlabel\n" + "".join(f"q{i}\tr{i}\t0\n" for i in range(100)))
    with pytest.raises(PreprocessError, match="2 of 6 train input records"):
        preprocess(make_config([train], [evaluation]), tmp_path / "out")


def test_all_rejected_never_green(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("text_a\ttext_b\tlabel\na\tb\tx\n")
    config = make_config([path], preprocess={"max_reject_fraction": 1.0})
    with pytest.raises(PreprocessError, match="no valid record is left"):
        preprocess(config, tmp_path / "out")
    assert not (tmp_path / "out" / COMPLETE_MARKER).exists()


def test_finished_run_not_overwritten(tmp_path):
    config = make_config([case("padding-id/most_frequent.tsv")])
    preprocess(config, tmp_path)
    with pytest.raises(FileExistsError, match="--overwrite"):
        preprocess(config, tmp_path)
    summary = preprocess(config, tmp_path, overwrite=True)
    assert summary["status"] == "complete"


def test_rerun_after_unfinished_run(tmp_path):
    (tmp_path / RUNNING_MARKER).write_text("{}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train-00000-of-00009.tfrecord.gz").write_bytes(b"half written")
    summary = preprocess(make_config([case("padding-id/most_frequent.tsv")]), tmp_path)
    assert summary["status"] == "complete"
    assert not (tmp_path / "data" / "train-00000-of-00009.tfrecord.gz").exists()
    assert not (tmp_path / RUNNING_MARKER).exists()


def test_foreign_directory_left_alone(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.tsv").write_text("my own file\n")
    (tmp_path / "summary.json").write_text("{}")
    config = make_config([case("padding-id/most_frequent.tsv")])
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="is not empty and contains no pairtrain preprocessing run"):
            preprocess(config, tmp_path, overwrite=overwrite)
    assert (tmp_path / "data" / "notes.tsv").read_text() == "my own file\n"
    assert (tmp_path / "summary.json").read_text() == "{}"


def test_input_inside_output_rejected(tmp_path):
    source = tmp_path / "out" / "data" / "train.tsv"
    source.parent.mkdir(parents=True)
    source.write_bytes(open(case("padding-id/most_frequent.tsv"), "rb").read())
    with pytest.raises(FileExistsError, match="is inside the output directory"):
        preprocess(make_config([source]), tmp_path / "out")
    assert source.exists()


def test_trainer_refuses_unfinished_dir(tmp_path):
    from trainer.data import DataError, PreprocessedData

    preprocess(make_config([case("padding-id/most_frequent.tsv")]), tmp_path)
    (tmp_path / COMPLETE_MARKER).unlink()
    with pytest.raises(DataError, match="not a finished preprocessing run"):
        PreprocessedData(str(tmp_path))


def test_unknown_beam_argument(tmp_path):
    from pipeline.job import run_preprocess

    config = make_config([case("padding-id/most_frequent.tsv")])
    with pytest.raises(ConfigError, match="--num_wrokers"):
        run_preprocess(config, str(tmp_path), ["--runner=FnApiRunner", "--num_wrokers=2"])


def test_missing_glob_fails_before_pipeline(tmp_path):
    config = make_config([str(tmp_path / "nothing-*.tsv")])
    with pytest.raises(read.InputError, match="no train input file matches"):
        preprocess(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_multi_process_runner(tmp_path):
    from pipeline.job import run_preprocess

    config = make_config([case("hermetic-export/train.tsv")])
    args = ["--runner=FnApiRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    summary = run_preprocess(config, str(tmp_path), args)
    assert summary["records"]["written"]["train"] == 10


def test_sibling_with_common_prefix_allowed(tmp_path):
    source = tmp_path / "questions_train.tsv"
    source.write_bytes(open(case("padding-id/most_frequent.tsv"), "rb").read())
    summary = preprocess(make_config([source]), tmp_path / "questions")
    assert summary["status"] == "complete"


def test_job_submitted_without_waiting_protected(tmp_path):
    (tmp_path / RUNNING_MARKER).write_text(json.dumps({"started_at": 0, "waited": False}))
    (tmp_path / "data").mkdir()
    config = make_config([case("padding-id/most_frequent.tsv")])
    with pytest.raises(FileExistsError, match="may still be running"):
        preprocess(config, tmp_path)
    assert (tmp_path / "data").is_dir()
    assert preprocess(config, tmp_path, overwrite=True)["status"] == "complete"


def test_vocabulary_count_ignores_truncation(tmp_path):
    path = tmp_path / "long.tsv"
    path.write_text("text_a\ttext_b\tlabel\n" + "".join(f"w{i} w{i+1} w{i+2} w{i+3}\tq{i}\t{i % 2}\n" for i in range(10)))
    summary = preprocess(make_config([path], preprocess={"max_tokens": 1}), tmp_path / "out")
    assert summary["vocabulary_tokens"] == len(vocabulary(tmp_path / "out"))
    assert summary["vocabulary_tokens"] == 13 + 10
