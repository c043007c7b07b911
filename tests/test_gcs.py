"""gs:// reading, writing and model copies against gcp-storage-emulator on 127.0.0.1.

Beam's gs:// file system and google-cloud-storage both honour
STORAGE_EMULATOR_HOST, so they run for real here. TensorFlow's own gs://
file system does not (its endpoints are compiled in), so tf.Transform's temp
and output folders stay on local paths in these tests.
"""

import gzip
import json

import pytest

from pairtrain import gcs
from pipeline import features, read
from tests.conftest import BEAM_ARGS, make_config
from tests.gcs_emulator import gcs_bucket, gcs_emulator  # noqa: F401  (pytest fixtures)

# Header on line 1; the quoted text_a of the second record spans lines 3-4.
RAW_TSV = (
    "text_a\ttext_b\tlabel\n"
    "how are you\thow do you do\t1\n"
    '"a quoted\nquestion"\tthe answer\t0\n'
    "red\tblue\tmaybe\n"
    "only one field\n"
    "green tea\tblack tea\t1\n"
)
EXPECTED_PAIRS = [
    # (line, text_a tokens, text_b tokens, label)
    (2, ["how", "are", "you"], ["how", "do", "you", "do"], 1),
    (3, ["a", "quoted", "question"], ["the", "answer"], 0),
    (7, ["green", "tea"], ["black", "tea"], 1),
]
EXPECTED_REJECTED = [(5, read.UNKNOWN_LABEL), (6, read.MISSING_COLUMNS)]


def upload_bytes(emulator, bucket: str, name: str, data: bytes) -> str:
    emulator.client().bucket(bucket).blob(name).upload_from_string(data)
    return f"gs://{bucket}/{name}"


def download_bytes(emulator, url: str) -> bytes:
    bucket, name = url[len("gs://") :].split("/", 1)
    return emulator.client().bucket(bucket).blob(name).download_as_bytes()


@pytest.mark.parametrize(
    "name, data",
    [("in/pairs.tsv", RAW_TSV.encode()), ("in/pairs.tsv.gz", gzip.compress(RAW_TSV.encode()))],
)
def test_record_parser_reads_gs(gcs_emulator, gcs_bucket, name, data):
    url = upload_bytes(gcs_emulator, gcs_bucket, name, data)
    config = make_config([url])
    assert read.expand_patterns([f"gs://{gcs_bucket}/in/*"], "train") == [url]

    results = list(read.RecordParser(config).parse_file(url))

    pairs = [record for outcome, record in results if outcome == read.OK]
    rejected = [record for outcome, record in results if outcome == read.REJECTED]
    assert [pair[read.LINE_KEY] for pair in pairs] == [line for line, *_ in EXPECTED_PAIRS]
    assert [pair[features.TEXT_A].split() for pair in pairs] == [tokens for _, tokens, _, _ in EXPECTED_PAIRS]
    assert [pair[features.LABEL] for pair in pairs] == [label for *_, label in EXPECTED_PAIRS]
    assert {pair[read.SOURCE_KEY] for pair in pairs} == {url}
    assert [(record[read.LINE_KEY], record["reason"]) for record in rejected] == EXPECTED_REJECTED
    assert rejected[0]["raw"] == "red\tblue\tmaybe\n"


def test_pipeline_reads_and_writes_gs(gcs_emulator, gcs_bucket, tmp_path):
    """Read pairs from gs://, analyze and transform them, and write TFRecords and dead letters to gs://.

    The steps are the product's own (pipeline.preprocess), wired like
    build_pipeline but with tf.Transform's temp folder and transform_fn on
    local paths: tf.Transform reaches those through TensorFlow's gs:// file
    system, which cannot be pointed at the emulator.
    """
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from apache_beam.io.filesystems import FileSystems
    from tensorflow_transform.tf_metadata import dataset_metadata

    from pipeline import preprocess
    from pipeline.preprocess import (  # pylint: disable=protected-access
        _CheckIdRange,
        _ReadPairs,
        _select,
        _to_instance,
        _write_json_lines,
    )
    from pipeline.layout import DATA_DIR, REJECTED_DIR, TFRECORD_SUFFIX
    from pipeline.transform import RAW_FEATURE_SPEC, make_preprocessing_fn

    url = upload_bytes(gcs_emulator, gcs_bucket, "in/pairs.tsv", RAW_TSV.encode())
    output = f"gs://{gcs_bucket}/out"
    transform_dir = tmp_path / "transform_output"
    config = make_config([url])
    prep = config.preprocess

    with tft_beam.Context(temp_dir=str(tmp_path / "tft-tmp")):
        with beam.Pipeline(options=preprocess.pipeline_options(BEAM_ARGS)) as p:
            parsed = (
                p
                | "ListTrainFiles" >> beam.Create([url])
                | "ReadTrainPairs" >> _ReadPairs(read.RecordParser(config))
            )
            rejected = parsed | "SelectRejected" >> _select(read.REJECTED)
            _write_json_lines(rejected, f"{output}/{REJECTED_DIR}/rejected", ".jsonl", "Rejected")
            instances = (
                parsed
                | "SelectPairs" >> _select(read.OK)
                | "ToInstances" >> beam.Map(_to_instance)
            )
            raw_metadata = dataset_metadata.DatasetMetadata.from_feature_spec(RAW_FEATURE_SPEC)
            preprocessing_fn = make_preprocessing_fn(prep.vocab_size, prep.min_count, prep.max_tokens)
            transform_fn = (instances, raw_metadata) | "AnalyzeTrain" >> tft_beam.AnalyzeDataset(preprocessing_fn)
            _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(str(transform_dir))
            transformed, transformed_metadata = (
                (instances, raw_metadata),
                transform_fn,
            ) | "TransformTrain" >> tft_beam.TransformDataset()
            coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
            _ = (
                transformed
                | "CheckIds" >> beam.ParDo(_CheckIdRange(prep.vocab_size))
                | "Encode" >> beam.Map(coder.encode)
                | "WriteTrain"
                >> beam.io.WriteToTFRecord(
                    f"{output}/{DATA_DIR}/train", file_name_suffix=TFRECORD_SUFFIX, num_shards=1
                )
            )

    data_files = [meta.path for meta in FileSystems.match([f"{output}/{DATA_DIR}/train-*"])[0].metadata_list]
    assert len(data_files) == 1
    assert data_files[0].endswith(TFRECORD_SUFFIX)
    local_records = tmp_path / "train.tfrecord.gz"
    local_records.write_bytes(download_bytes(gcs_emulator, data_files[0]))

    tft_output = tft.TFTransformOutput(str(transform_dir))
    vocabulary = tft_output.vocabulary_by_name(features.VOCABULARY_NAME)
    feature_spec = tft_output.transformed_feature_spec()
    examples = []
    for serialized in tf.data.TFRecordDataset(str(local_records), compression_type="GZIP"):
        parsed_example = tf.io.parse_single_example(serialized, feature_spec)
        tokens = {}
        for key in features.TEXT_KEYS:
            ids = tf.sparse.to_dense(parsed_example[features.ids_key(key)]).numpy().tolist()
            assert min(ids) >= features.RESERVED_IDS, f"{key} holds a padding or out-of-vocabulary id: {ids}"
            tokens[key] = [vocabulary[i - features.RESERVED_IDS].decode() for i in ids]
        examples.append((tokens[features.TEXT_A], tokens[features.TEXT_B], int(parsed_example[features.LABEL])))
    assert sorted(examples) == sorted((a, b, label) for _, a, b, label in EXPECTED_PAIRS)

    dead_letter_files = FileSystems.match([f"{output}/{REJECTED_DIR}/rejected-*.jsonl"])[0].metadata_list
    assert len(dead_letter_files) >= 1
    dead_letters = [
        json.loads(line)
        for meta in dead_letter_files
        for line in download_bytes(gcs_emulator, meta.path).decode().splitlines()
    ]
    assert sorted((record[read.LINE_KEY], record["reason"]) for record in dead_letters) == EXPECTED_REJECTED
    assert {record[read.SOURCE_KEY] for record in dead_letters} == {url}


def save_small_model(directory) -> None:
    """Save a SavedModel with a vocabulary asset, a variable and a signature, plus assets.extra/config.json."""
    import tensorflow as tf

    vocabulary_path = directory.parent / "vocabulary.txt"
    vocabulary_path.write_text("apple\nbanana\ncherry\n")

    class Lookup(tf.Module):
        def __init__(self):
            super().__init__()
            initializer = tf.lookup.TextFileInitializer(
                str(vocabulary_path),
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            )
            self.table = tf.lookup.StaticHashTable(initializer, default_value=-1)
            self.scale = tf.Variable(10, dtype=tf.int64)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, tokens):
            return self.table.lookup(tokens) * self.scale

    module = Lookup()
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.__call__})
    (directory / "assets.extra").mkdir()
    (directory / "assets.extra" / "config.json").write_text('{"vocab_size": 5}\n')


def relative_files(root) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_model_folder_round_trip(gcs_emulator, gcs_bucket, tmp_path):
    import tensorflow as tf

    model_dir = tmp_path / "export" / "1700000000"
    model_dir.mkdir(parents=True)
    save_small_model(model_dir)
    url = f"gs://{gcs_bucket}/runs/run-1/model/1700000000"
    client = gcs_emulator.client()

    uploaded = gcs.upload_dir(str(model_dir), url, client=client)
    local_files = relative_files(model_dir)
    assert sorted(uploaded) == sorted(f"{url}/{name}" for name in local_files)
    assert "saved_model.pb" in local_files
    assert "assets/vocabulary.txt" in local_files
    assert any(name.startswith("variables/variables.data-") for name in local_files)

    copy_dir = tmp_path / "copy"
    downloaded = gcs.download_dir(url + "/", str(copy_dir), client=client)
    assert len(downloaded) == len(local_files)
    assert relative_files(copy_dir) == local_files

    loaded = tf.saved_model.load(str(copy_dir))
    result = loaded.signatures["serving_default"](tf.constant(["banana", "durian"]))
    assert list(result.values())[0].numpy().tolist() == [10, -10]


def test_download_dir_missing_prefix(gcs_emulator, gcs_bucket, tmp_path):
    with pytest.raises(FileNotFoundError, match="no object found"):
        gcs.download_dir(f"gs://{gcs_bucket}/absent", str(tmp_path), client=gcs_emulator.client())


def test_download_dir_prefix_is_whole_segment(gcs_emulator, gcs_bucket, tmp_path):
    upload_bytes(gcs_emulator, gcs_bucket, "model/a.txt", b"a")
    upload_bytes(gcs_emulator, gcs_bucket, "model2/b.txt", b"b")
    downloaded = gcs.download_dir(f"gs://{gcs_bucket}/model", str(tmp_path / "copy"), client=gcs_emulator.client())
    assert relative_files(tmp_path / "copy") == {"a.txt": b"a"}
    assert len(downloaded) == 1


@pytest.mark.parametrize("name", ["../outside.txt", "a/../../outside.txt", "/etc/passwd"])
def test_local_target_rejects_escaping_name(tmp_path, name):
    # Checked without the emulator, which rejects object names with "..".
    with pytest.raises(ValueError, match="outside"):
        gcs.local_target(tmp_path / "copy", name)


def test_local_target_keeps_subfolders(tmp_path):
    expected = (tmp_path / "variables" / "variables.index").resolve()
    assert gcs.local_target(tmp_path, "variables/variables.index") == expected


def test_upload_dir_rejects_empty_folder(gcs_emulator, gcs_bucket, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="contains no files"):
        gcs.upload_dir(str(tmp_path), f"gs://{gcs_bucket}/model", client=gcs_emulator.client())
    assert list(gcs_emulator.client().list_blobs(gcs_bucket)) == []


@pytest.mark.parametrize(
    "url, expected",
    [
        ("gs://bucket", ("bucket", "")),
        ("gs://bucket/", ("bucket", "")),
        ("gs://bucket/a/b", ("bucket", "a/b/")),
        ("gs://bucket/a/b/", ("bucket", "a/b/")),
    ],
)
def test_parse_gs_url(url, expected):
    assert gcs.parse_gs_url(url) == expected


@pytest.mark.parametrize("url", ["/local/path", "s3://bucket/a", "gs://", "gs:///a"])
def test_parse_gs_url_invalid(url):
    with pytest.raises(ValueError, match="invalid Cloud Storage URL"):
        gcs.parse_gs_url(url)
