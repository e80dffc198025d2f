"""Text generation from a causal language model, one token at a time.

Choosing the next token from its logits:
- greedy: the most likely token (deterministic);
- sampling with a temperature: softmax(logits / temperature); below 1 sharpens
  the distribution, above 1 flattens it;
- top-k: sample only among the k most likely tokens;
- top-p (nucleus): sample among the fewest most likely tokens whose
  probabilities sum to at least p.

`filter_logits` applies the temperature and the filters; `sample_from_uniform`
turns given uniform draws into tokens (the inverse of the cumulative
distribution), so a sample is a deterministic function of its draws.

`generate` decodes with a key/value cache: each step runs only the newest
token through the network and reads the keys and values of earlier positions
from the cache, instead of re-running the whole prefix (`use_cache=False`,
kept to show that both give the same tokens and logits). Only `keras.ops` and
`keras.random` are used, so decoding runs on every backend.
"""

import keras
import numpy as np
from keras import ops

from reference_impl.layers import masked_score


def keep_top_k(logits, k):
    """Logits [B, V] with all but the k largest per row pushed to a masked score."""
    kth_largest = ops.top_k(logits, k, sorted=True)[0][:, -1:]
    return ops.where(logits < kth_largest, masked_score(logits.dtype), logits)


def keep_top_p(logits, p):
    """Logits [B, V] keeping the smallest set of most likely tokens with probability >= p.

    A token is kept when the probability of the tokens ranked above it is
    still below p, so the most likely token is always kept. Tokens tied with
    the last kept one are kept too.
    """
    sorted_logits = ops.top_k(logits, ops.shape(logits)[-1], sorted=True)[0]
    probabilities = ops.softmax(sorted_logits, axis=-1)
    mass_above = ops.cumsum(probabilities, axis=-1) - probabilities
    kept = ops.where(mass_above < p, sorted_logits, np.inf)
    threshold = ops.min(kept, axis=-1, keepdims=True)
    return ops.where(logits < threshold, masked_score(logits.dtype), logits)


def filter_logits(logits, temperature=1.0, top_k=None, top_p=None):
    """Logits [B, V] as float32, divided by `temperature`, then top-k and/or top-p filtered.

    The temperature comes first, so top-p measures probability mass under
    the sharpened or flattened distribution that is sampled from.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}; use strategy='greedy'.")
    logits = ops.cast(logits, "float32") / temperature
    if top_k is not None:
        logits = keep_top_k(logits, top_k)
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        logits = keep_top_p(logits, top_p)
    return logits


def sample_from_uniform(logits, uniform):
    """Token ids [B] drawn from softmax(logits [B, V]) with given draws `uniform` [B] in [0, 1).

    Inverse-CDF sampling: the first token, in vocabulary order, whose
    cumulative probability exceeds the draw. With uniformly distributed draws
    each token comes up with its softmax probability. The draw is scaled by
    the total mass so that rounding never selects past the last token.
    """
    cumulative = ops.cumsum(ops.softmax(ops.cast(logits, "float32"), axis=-1), axis=-1)
    threshold = ops.cast(uniform, "float32")[:, None] * cumulative[:, -1:]
    return ops.sum(ops.cast(cumulative <= threshold, "int32"), axis=-1)


def choose_next_token(logits, strategy="greedy", temperature=1.0, top_k=None, top_p=None,
                      seed=None):
    """Next token ids [B] from next-token logits [B, V].

    strategy "greedy" takes the argmax; "sample" draws from
    softmax(logits / temperature), after `top_k` and/or `top_p` filtering.
    `seed` (an int or a `keras.random.SeedGenerator`) makes draws repeatable.
    """
    if strategy == "greedy":
        return ops.argmax(logits, axis=-1)
    if strategy != "sample":
        raise ValueError(f"strategy must be 'greedy' or 'sample', got {strategy!r}.")
    logits = filter_logits(logits, temperature, top_k, top_p)
    return keras.random.categorical(logits, 1, seed=seed)[:, 0]


def generate(causal_lm, token_ids, padding_mask, max_length=None, use_cache=True, **choice):
    """Extend right-padded prompts to `max_length` tokens.

    Args:
        causal_lm: a `GPTCausalLM`.
        token_ids, padding_mask: [B, T] int arrays; the prompt of each row is
            its masked-in tokens. Rows are padded (or cut) to `max_length`.
        max_length: total length of each output row (default T).
        use_cache: decode with the key/value cache (fast) or by re-running
            the whole prefix at every step (slow; for checking the cache).
        **choice: `choose_next_token` arguments (strategy, temperature,
            top_k, top_p, seed).

    Returns:
        (token_ids [B, max_length] int32 numpy: prompts kept, the rest
        generated; logits [B, steps, V] numpy: the next-token logits each
        step chose from, step s predicting position `start + s`, where
        `start` is the shortest prompt's length).
    """
    token_ids, padding_mask = np.array(token_ids, "int32"), np.array(padding_mask, bool)
    max_length = max_length or token_ids.shape[1]
    width = max_length - token_ids.shape[1]
    if width > 0:
        token_ids = np.pad(token_ids, ((0, 0), (0, width)))
        padding_mask = np.pad(padding_mask, ((0, 0), (0, width)))
    token_ids, padding_mask = token_ids[:, :max_length], padding_mask[:, :max_length]
    if max_length > causal_lm.backbone.get_config()["max_sequence_length"]:
        raise ValueError(
            f"max_length {max_length} exceeds the model's max_sequence_length "
            f"{causal_lm.backbone.get_config()['max_sequence_length']}."
        )
    start = int(padding_mask.sum(axis=1).min())
    if start == 0:
        raise ValueError("Every prompt needs at least one token (a row of padding_mask is all 0).")
    if start == max_length:
        raise ValueError(f"Every prompt already fills max_length={max_length}; raise max_length.")
    if isinstance(choice.get("seed"), int):
        choice["seed"] = keras.random.SeedGenerator(choice["seed"])

    if use_cache:
        # The prompt prefix runs once and fills the cache.
        cache = causal_lm.backbone.empty_cache(len(token_ids), max_length)
        logits, cache = causal_lm.call_with_cache(token_ids[:, :start], cache, 0)
    step_logits = []
    for index in range(start, max_length):
        if not use_cache:
            inputs = {"token_ids": token_ids[:, :index],
                      "padding_mask": np.ones((len(token_ids), index), "int32")}
            logits = causal_lm(inputs, training=False)
        logits = logits[:, -1]
        chosen = ops.convert_to_numpy(choose_next_token(logits, **choice)).astype("int32")
        # Prompt tokens stay; only positions outside a row's prompt are generated.
        token_ids[:, index] = np.where(padding_mask[:, index], token_ids[:, index], chosen)
        step_logits.append(ops.convert_to_numpy(logits))
        if use_cache and index + 1 < max_length:
            # Only the token just placed runs through the network.
            logits, cache = causal_lm.call_with_cache(token_ids[:, index:index + 1], cache, index)
    return token_ids, np.stack(step_logits, axis=1)
