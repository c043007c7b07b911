"""Data-quality steps between reading and tf.Transform: token counts, long texts, duplicates, splits.

Token counts and normalized texts come from the same graph tokenizer that
`preprocessing_fn` and the exported model use, run eagerly on batches of
pairs. So "too long" and the text groups of the group split follow exactly
the tokens the model gets. Duplicates compare the raw texts, stripped.
"""

import collections
import hashlib
from typing import Any, Iterable

import apache_beam as beam

from pipeline import features, read

TOO_LONG = "too_long"
DUPLICATE = "duplicate"

# Internal keys added to each pair dict; none of them reaches tf.Transform.
ROLE_KEY = "role"  # "train" or "eval": which input list the pair came from
NUM_TOKENS_KEY = "num_tokens"  # [tokens in text_a, tokens in text_b] before truncation
NORMALIZED_KEY = "normalized"  # [text_a, text_b] as space-joined tokens
SPLIT_KEY = "split"


class TokenizePairs(beam.DoFn):
    """Add token counts and normalized texts to a batch of pairs, using the graph tokenizer."""

    def setup(self):
        import tensorflow as tf

        from pipeline.tokenization import tokenize

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def tokenize_batch(texts):
            tokens = tokenize(texts)
            return tokens.row_lengths(), tf.strings.reduce_join(tokens, axis=-1, separator=" ")

        self._tf = tf
        self._tokenize = tokenize_batch

    def process(self, batch: list[dict[str, Any]]):
        columns = {}
        for key in features.TEXT_KEYS:
            lengths, normalized = self._tokenize(self._tf.constant([pair[key] for pair in batch]))
            columns[key] = (lengths.numpy().tolist(), [text.decode("utf-8") for text in normalized.numpy()])
        for index, pair in enumerate(batch):
            pair = dict(pair)
            pair[NUM_TOKENS_KEY] = [columns[key][0][index] for key in features.TEXT_KEYS]
            pair[NORMALIZED_KEY] = [columns[key][1][index] for key in features.TEXT_KEYS]
            yield pair


def dead_letter(pair: dict[str, Any], reason: str, detail: str) -> dict[str, Any]:
    return {
        "reason": reason,
        "detail": detail,
        read.SOURCE_KEY: pair[read.SOURCE_KEY],
        read.LINE_KEY: pair[read.LINE_KEY],
        "raw": pair["raw"],
        ROLE_KEY: pair[ROLE_KEY],
    }


def route_long_text(pair: dict[str, Any], max_tokens: int, reject: bool):
    """Return ('ok', pair), or ('rejected', dead letter) for a text over max_tokens when `reject`."""
    longest = max(pair[NUM_TOKENS_KEY])
    if reject and longest > max_tokens:
        side = features.TEXT_KEYS[pair[NUM_TOKENS_KEY].index(longest)]
        return read.REJECTED, dead_letter(pair, TOO_LONG, f"{side} has {longest} tokens, over max_tokens={max_tokens}")
    return read.OK, pair


def pair_key(pair: dict[str, Any]) -> str:
    """Return the unordered pair of stripped raw texts, the identity used for duplicates."""
    first, second = sorted((pair[features.TEXT_A].strip(), pair[features.TEXT_B].strip()))
    return first + "\0" + second


def _input_order(pair: dict[str, Any]) -> tuple:
    # Train inputs before eval inputs, then by file and line, so the pair
    # that is kept does not depend on how Beam ordered the group.
    return (pair[ROLE_KEY] != "train", pair[read.SOURCE_KEY], pair[read.LINE_KEY])


def mark_duplicates(keyed_group, drop: bool):
    """Yield ('ok', pair) or ('duplicate', dead letter) for one group of equal pairs, plus counts.

    The first pair in input order is kept. Each later one is an exact
    duplicate (same order of texts) or a swapped duplicate (b, a). With
    `drop`, later ones become dead letters; otherwise they are kept and only
    counted.
    """
    _, pairs = keyed_group
    pairs = sorted(pairs, key=_input_order)
    first = pairs[0]
    yield read.OK, first
    for pair in pairs[1:]:
        swapped = pair[features.TEXT_A].strip() != first[features.TEXT_A].strip()
        kind = "swapped" if swapped else "exact"
        yield "count", kind
        if first[features.LABEL] != pair[features.LABEL]:
            yield "count", "conflicting_labels"
        if drop:
            detail = f"{kind} duplicate of {first[read.SOURCE_KEY]} line {first[read.LINE_KEY]}"
            yield "count", "dropped"
            yield DUPLICATE, dead_letter(pair, DUPLICATE, detail)
        else:
            yield read.OK, pair


def _find(parent: dict[str, str], node: str) -> str:
    root = node
    while parent[root] != root:
        root = parent[root]
    while parent[node] != root:
        parent[node], node = root, parent[node]
    return root


def _union(parent: dict[str, str], first: str, second: str) -> None:
    for node in (first, second):
        parent.setdefault(node, node)
    root_first, root_second = _find(parent, first), _find(parent, second)
    if root_first != root_second:
        # The smaller text becomes the root, so components are named the
        # same whatever order the edges arrive in.
        low, high = sorted((root_first, root_second))
        parent[high] = low


class ConnectedTextsFn(beam.CombineFn):
    """Union-find over texts: pairs are edges, the output maps each text to its component's root.

    NOTE: the whole text-to-root map is one combiner output and one side
    input, so it must fit in a worker's memory (about 100 bytes per distinct
    text plus the text itself).
    """

    def create_accumulator(self):
        return {}

    def add_input(self, parent, edge):
        first, second = edge
        if first and second:
            _union(parent, first, second)
        elif first or second:
            parent.setdefault(first or second, first or second)
        return parent

    def merge_accumulators(self, accumulators: Iterable[dict]):
        merged: dict[str, str] = {}
        for parent in accumulators:
            for node in list(parent):
                _union(merged, node, _find(parent, node))
        return merged

    def extract_output(self, parent):
        return {node: _find(parent, node) for node in parent}


def component_of(pair: dict[str, Any], text_to_root: dict[str, str]) -> str:
    """Return the component a pair belongs to: the root of its non-empty texts, or a key of its own."""
    for text in pair[NORMALIZED_KEY]:
        if text:
            return text_to_root[text]
    return "\0empty\0" + pair_key(pair)


def unit_fraction(key: str) -> float:
    """Map a string to a stable number in [0, 1) with SHA-256."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def choose_split(fraction: float, eval_fraction: float, validation_fraction: float) -> str:
    if fraction < eval_fraction:
        return "eval"
    # Rescale the rest to [0, 1) so validation_fraction is a share of the non-eval pairs.
    rest = (fraction - eval_fraction) / (1.0 - eval_fraction)
    return "validation" if rest < validation_fraction else "train"


def summarize_components(component_sizes: Iterable[tuple[str, dict[str, int]]]) -> dict[str, Any]:
    """Return the count, largest size and realized split shares of the components."""
    pairs_by_split = collections.Counter()
    largest = 0
    count = 0
    for _, split_counts in component_sizes:
        count += 1
        size = sum(split_counts.values())
        largest = max(largest, size)
        pairs_by_split.update(split_counts)
    total = sum(pairs_by_split.values())
    return {
        "components": count,
        "largest_component_pairs": largest,
        "realized_fraction": {split: (n / total if total else 0.0) for split, n in sorted(pairs_by_split.items())},
    }
