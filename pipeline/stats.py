"""Per-split statistics of transformed examples, combined in Beam for summary.json."""

import collections
from typing import Any

import apache_beam as beam

from pipeline import features

PERCENTILES = (50, 90, 95, 99, 100)


class SplitStatsFn(beam.CombineFn):
    """Count examples, labels, tokens, out-of-vocabulary ids and token lengths of one split."""

    def create_accumulator(self):
        return {
            "examples": 0,
            "positive": 0,
            "ids": 0,
            "oov_ids": 0,
            "truncated": collections.Counter(),
            "lengths": {key: collections.Counter() for key in features.TEXT_KEYS},
            "vocabulary_ids": set(),
            "max_id": -1,
        }

    def add_input(self, acc, example):
        acc["examples"] += 1
        acc["positive"] += int(example[features.LABEL])
        for key in features.TEXT_KEYS:
            ids = example[features.ids_key(key)]
            num_tokens = int(example[features.num_tokens_key(key)])
            acc["ids"] += len(ids)
            acc["oov_ids"] += int((ids == features.OOV_ID).sum())
            acc["lengths"][key][num_tokens] += 1
            if num_tokens > len(ids):
                acc["truncated"][key] += 1
            if len(ids):
                acc["max_id"] = max(acc["max_id"], int(ids.max()))
                acc["vocabulary_ids"].update(int(i) for i in ids if i >= features.RESERVED_IDS)
        return acc

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for acc in accumulators:
            for key in ("examples", "positive", "ids", "oov_ids"):
                merged[key] += acc[key]
            merged["truncated"].update(acc["truncated"])
            for key in features.TEXT_KEYS:
                merged["lengths"][key].update(acc["lengths"][key])
            merged["vocabulary_ids"] |= acc["vocabulary_ids"]
            merged["max_id"] = max(merged["max_id"], acc["max_id"])
        return merged

    def extract_output(self, acc) -> dict[str, Any]:
        return {
            "examples": acc["examples"],
            "positive": acc["positive"],
            "token_ids": acc["ids"],
            "out_of_vocabulary_ids": acc["oov_ids"],
            "truncated_texts": dict(acc["truncated"]),
            "token_length_percentiles": {
                key: length_percentiles(acc["lengths"][key]) for key in features.TEXT_KEYS
            },
            "distinct_vocabulary_ids": len(acc["vocabulary_ids"]),
            "max_id": acc["max_id"],
        }


def length_percentiles(histogram: collections.Counter) -> dict[str, int]:
    """Return nearest-rank percentiles (p50 … p100) of a {length: count} histogram."""
    total = sum(histogram.values())
    if not total:
        return {}
    result = {}
    for percentile in PERCENTILES:
        rank = max(1, -(-percentile * total // 100))
        seen = 0
        for length in sorted(histogram):
            seen += histogram[length]
            if seen >= rank:
                result[f"p{percentile}"] = length
                break
    return result
