"""Read raw text pairs from TSV, CSV and JSON Lines files, local or gs://, gzip or plain.

Each file is read by one worker, in order, so every record carries its file and
the line where it starts (a header row is line 1), and a quoted field may
contain line breaks. Lines are split on b"\\n" before decoding, which holds for
UTF-8 and single-byte encodings such as cp1252 but not for UTF-16.

A record that cannot become a labelled pair is returned as a rejected record
with a reason, the raw text, the file and the line, so nothing is dropped.
"""

import csv
import json
import logging
import math
import os
from typing import Any, Iterator

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pairtrain import io_utils
from pairtrain.config import Config
from pipeline import features

logger = logging.getLogger(__name__)

# Rejection reasons, written to the dead letters and counted in summary.json.
MISSING_COLUMNS = "missing_columns"
EXTRA_COLUMNS = "extra_columns"
UNKNOWN_LABEL = "unknown_label"
INVALID_LABEL = "invalid_label"
EMPTY_TEXT = "empty_text"
DECODE_ERROR = "decode_error"
INVALID_JSON = "invalid_json"
UNBALANCED_QUOTE = "unbalanced_quote"
MISSING_FIELD = "missing_field"

OK = "ok"
REJECTED = "rejected"

SOURCE_KEY = "source"
LINE_KEY = "line"


class InputError(ValueError):
    """Input files that cannot be read at all: a glob that matches nothing, a bad header."""


def expand_patterns(patterns: list[str], role: str) -> list[str]:
    """Return the sorted files matched by `patterns`; raise InputError on a pattern with no match.

    `role` names the files in the error message, e.g. "train input".
    """
    paths: list[str] = []
    for pattern in patterns:
        if not io_utils.is_remote(pattern):
            pattern = os.path.abspath(pattern)
        results = FileSystems.match([pattern])[0].metadata_list
        matched = sorted(meta.path for meta in results if meta.size_in_bytes is not None)
        if not matched:
            raise InputError(
                f"no {role} file matches {pattern!r}; check the path or glob "
                f"(relative paths are resolved from the current directory)"
            )
        paths.extend(matched)
    return sorted(set(paths))


class _DecodedLines:
    """Iterate over a binary stream's lines as text, remembering decode failures.

    `line_number` is the 1-based number of the last line handed out, and
    `pending_errors` collects decode errors since the caller last cleared it.
    """

    def __init__(self, handle, encoding: str):
        self._handle = handle
        self._encoding = encoding
        self.line_number = 0
        self.pending_errors: list[str] = []
        self.consumed: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = self._handle.readline()
        if not raw:
            raise StopIteration
        self.line_number += 1
        try:
            text = raw.decode(self._encoding)
        except UnicodeDecodeError as error:
            text = raw.decode(self._encoding, errors="replace")
            self.pending_errors.append(
                f"line {self.line_number}, byte {error.start}: cannot decode "
                f"{raw[error.start:error.end]!r} as {self._encoding}"
            )
        if self.line_number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        self.consumed.append(text)
        return text


class RecordParser:
    """Turn one input file into ('ok', pair) and ('rejected', dead letter) tuples."""

    def __init__(self, config: Config, require_label: bool = True):
        self._require_label = require_label
        self._input = config.input
        self._delimiter = config.delimiter
        self._reject_empty = config.preprocess.empty_text == "reject"
        label = config.input.label
        self._positive = {value.strip() for value in label.positive}
        self._negative = {value.strip() for value in label.negative}

    def parse_file(self, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        logger.info("Reading %s", path)
        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
            lines = _DecodedLines(handle, self._input.encoding)
            if self._input.format == "jsonl":
                yield from self._parse_jsonl(path, lines)
            else:
                yield from self._parse_delimited(path, lines)

    def _parse_delimited(self, path, lines: _DecodedLines):
        quoting = csv.QUOTE_MINIMAL if self._input.quoting else csv.QUOTE_NONE
        reader = csv.reader(lines, delimiter=self._delimiter, quoting=quoting, quotechar='"')
        columns = self._input.columns
        header: list[str] | None = None
        indexes: dict[str, int] = {}
        while True:
            start_line = lines.line_number + 1
            lines.consumed.clear()
            lines.pending_errors.clear()
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise InputError(f"{path}, line {start_line}: invalid CSV: {error}") from None
            raw = "".join(lines.consumed)
            if self._input.header and header is None:
                header = [name.strip() for name in row]
                indexes = self._header_indexes(path, header)
                continue
            if not row:
                continue  # A blank line is not a record.
            if not indexes:
                indexes = {key: getattr(columns, key) for key in (features.TEXT_A, features.TEXT_B, features.LABEL)}
                if not self._require_label:
                    del indexes[features.LABEL]
            if lines.pending_errors:
                yield self._reject(path, start_line, raw, DECODE_ERROR, "; ".join(lines.pending_errors))
                continue
            suspect = self._unbalanced_quote(row, start_line, lines.line_number)
            if suspect:
                yield self._reject(path, start_line, raw, UNBALANCED_QUOTE, suspect)
                continue
            if header is not None and len(row) != len(header):
                reason = MISSING_COLUMNS if len(row) < len(header) else EXTRA_COLUMNS
                detail = f"expected {len(header)} fields as in the header row, found {len(row)}"
                yield self._reject(path, start_line, raw, reason, detail)
                continue
            needed = max(indexes.values()) + 1
            if len(row) < needed:
                detail = f"expected at least {needed} fields, found {len(row)}"
                yield self._reject(path, start_line, raw, MISSING_COLUMNS, detail)
                continue
            values = {key: row[index] for key, index in indexes.items()}
            yield self._to_pair(path, start_line, raw, values)

    def _unbalanced_quote(self, row: list[str], start_line: int, end_line: int) -> str | None:
        """Return why a multi-line record looks like an unclosed quote, or None.

        A quoted field that spans lines and contains the delimiter has almost
        surely swallowed the following records. This holds for tab and other
        rare delimiters but not for commas, which multi-line CSV text often
        contains, so comma-separated files are not checked.
        """
        if not self._input.quoting or self._delimiter == "," or end_line == start_line:
            return None
        for field in row:
            if "\n" in field and self._delimiter in field:
                return (
                    f"a quoted field runs from line {start_line} to line {end_line} and contains the "
                    "delimiter, so its opening quote is probably not closed; set input.quoting=false "
                    "if quotes in this file do not group fields"
                )
        return None

    def _header_indexes(self, path: str, header: list[str]) -> dict[str, int]:
        indexes = {}
        for key in (features.TEXT_A, features.TEXT_B, features.LABEL):
            column = getattr(self._input.columns, key)
            if isinstance(column, int):
                indexes[key] = column
            elif column in header:
                indexes[key] = header.index(column)
            elif key == features.LABEL and not self._require_label:
                continue
            else:
                raise InputError(
                    f"{path}, line 1: column {column!r} for {key} is not in the header row "
                    f"{header}; set input.columns.{key} to a header name or a 0-based index"
                )
        return indexes

    def _parse_jsonl(self, path, lines: _DecodedLines):
        for text in lines:
            line = lines.line_number
            lines.consumed.clear()
            if lines.pending_errors:
                errors = "; ".join(lines.pending_errors)
                lines.pending_errors.clear()
                yield self._reject(path, line, text, DECODE_ERROR, errors)
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as error:
                yield self._reject(path, line, text, INVALID_JSON, str(error))
                continue
            if not isinstance(obj, dict):
                yield self._reject(path, line, text, INVALID_JSON, "a line must hold a JSON object")
                continue
            values = {}
            for key in (features.TEXT_A, features.TEXT_B, features.LABEL):
                name = getattr(self._input.columns, key)
                if name not in obj or obj[name] is None:
                    if key == features.LABEL and not self._require_label:
                        continue
                    break
                if key != features.LABEL and not isinstance(obj[name], str):
                    break
                values[key] = obj[name]
            else:
                yield self._to_pair(path, line, text, values)
                continue
            if name in obj and obj[name] is not None:
                detail = f"field {name!r} is a {type(obj[name]).__name__}, not a string"
                yield self._reject(path, line, text, INVALID_JSON, detail)
            else:
                yield self._reject(path, line, text, MISSING_FIELD, f"field {name!r} is missing")

    def _to_pair(self, path: str, line: int, raw: str, values: dict[str, Any]):
        label = None
        if self._require_label or features.LABEL in values:
            label, problem = self._map_label(values[features.LABEL])
            if problem and self._require_label:
                return self._reject(path, line, raw, *problem)
        text_a = values[features.TEXT_A]
        text_b = values[features.TEXT_B]
        if self._reject_empty and (not text_a.strip() or not text_b.strip()):
            side = features.TEXT_A if not text_a.strip() else features.TEXT_B
            return self._reject(path, line, raw, EMPTY_TEXT, f"{side} is empty or blank")
        pair = {
            features.TEXT_A: text_a,
            features.TEXT_B: text_b,
            features.LABEL: label,
            SOURCE_KEY: path,
            LINE_KEY: line,
            "raw": raw,
        }
        return OK, pair

    def _map_label(self, raw_label: Any) -> tuple[int, tuple[str, str] | None]:
        label = self._input.label
        text = str(raw_label).strip()
        if label.threshold is not None:
            try:
                value = float(text)
            except ValueError:
                return 0, (INVALID_LABEL, f"label {text!r} is not a number")
            if not math.isfinite(value):
                return 0, (INVALID_LABEL, f"label {text!r} is not a finite number")
            return int(value >= label.threshold), None
        if text in self._positive:
            return 1, None
        if text in self._negative:
            return 0, None
        allowed = sorted(self._positive | self._negative)
        return 0, (UNKNOWN_LABEL, f"label {text!r} is none of {allowed}")

    @staticmethod
    def _reject(path: str, line: int, raw: str, reason: str, detail: str):
        return REJECTED, {
            "reason": reason,
            "detail": detail,
            SOURCE_KEY: path,
            LINE_KEY: line,
            "raw": raw,
        }
