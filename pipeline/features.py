"""Feature names and the token id layout shared by preprocessing, training and serving.

Every module that reads or writes a feature imports its name from here, so the
pipeline, the model and the serving signatures cannot drift apart.
"""

# Raw features, as read from the input files.
TEXT_A = "text_a"
TEXT_B = "text_b"
LABEL = "label"
TEXT_KEYS = (TEXT_A, TEXT_B)

# Transformed features, as written to the TFRecords.
TEXT_A_IDS = "text_a_ids"
TEXT_B_IDS = "text_b_ids"
TEXT_A_NUM_TOKENS = "text_a_num_tokens"
TEXT_B_NUM_TOKENS = "text_b_num_tokens"
ID_KEYS = (TEXT_A_IDS, TEXT_B_IDS)
NUM_TOKENS_KEYS = (TEXT_A_NUM_TOKENS, TEXT_B_NUM_TOKENS)

# Token id layout. tf.Transform gives id 0 to the most frequent token, so the
# pipeline shifts every vocabulary id by RESERVED_IDS: padding (which the
# model masks) and out-of-vocabulary tokens never share an id with a real token.
PADDING_ID = 0
OOV_ID = 1
RESERVED_IDS = 2

# Name of the vocabulary file inside the transform output. Named explicitly
# because tf.Transform derives default names from PYTHONHASHSEED.
VOCABULARY_NAME = "shared_vocabulary"


def max_vocabulary_tokens(vocab_size: int) -> int:
    """Return how many real tokens fit below `vocab_size` after the reserved ids."""
    return vocab_size - RESERVED_IDS


def ids_key(text_key: str) -> str:
    return f"{text_key}_ids"


def num_tokens_key(text_key: str) -> str:
    return f"{text_key}_num_tokens"
