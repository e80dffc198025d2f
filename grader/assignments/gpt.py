"""References and known bugs for the GPT assignment.

Never imported inside the sandbox. References come from `reference_impl.gpt`
(next-token targets, last-token pooling) and `reference_impl.generation`
(top-k, top-p, temperature and inverse-CDF sampling); each known bug is the
reference computed with the bug put in, so feedback can name the mistake.
"""

import keras
import numpy as np

from grader.assignments import Case, as_numpy_outputs as _numpy
from reference_impl import generation, gpt

MASKED = -1e9  # reference_impl.layers.masked_score for float32 logits


# -- next-token inputs and targets -------------------------------------------

def next_token_shift(token_ids, padding_mask):
    x, targets, weights = gpt.next_token_batches(token_ids, padding_mask)
    return _numpy((x["token_ids"], x["padding_mask"], targets, weights))


def targets_not_shifted(token_ids, padding_mask):
    inputs, input_mask, _, weights = next_token_shift(token_ids, padding_mask)
    return inputs, input_mask, inputs, weights


def weights_from_input_mask(token_ids, padding_mask):
    inputs, input_mask, targets, _ = next_token_shift(token_ids, padding_mask)
    return inputs, input_mask, targets, input_mask.astype("float32")


def every_target_weighted(token_ids, padding_mask):
    inputs, input_mask, targets, weights = next_token_shift(token_ids, padding_mask)
    return inputs, input_mask, targets, np.ones_like(weights)


def shifted_the_wrong_way(token_ids, padding_mask):
    token_ids, padding_mask = np.asarray(token_ids), np.asarray(padding_mask)
    return (token_ids[:, 1:], padding_mask[:, 1:], token_ids[:, :-1],
            padding_mask[:, :-1].astype("float32"))


# -- top-k and top-p ------------------------------------------------------------

def keep_top_k(logits, k):
    return _numpy(generation.keep_top_k(logits, k))


def top_k_plus_one(logits, k):
    return keep_top_k(logits, k + 1)


def top_k_minus_one(logits, k):
    return keep_top_k(logits, k - 1) if k > 1 else (np.full_like(logits, MASKED),)


def top_k_smallest(logits, k):
    kth_smallest = np.sort(logits, axis=-1)[:, k - 1:k]
    return (np.where(logits > kth_smallest, MASKED, logits).astype("float32"),)


def top_k_masked_with_zero(logits, k):
    kept = keep_top_k(logits, k)[0]
    return (np.where(kept == MASKED, 0.0, kept).astype("float32"),)


def keep_top_p(logits, p):
    return _numpy(generation.keep_top_p(logits, p))


def _probabilities(logits):
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def _top_p_by_rule(logits, p, keep):
    """Keep each token for which keep(cumulative probability up to it, its own) holds."""
    probabilities = _probabilities(np.asarray(logits, "float64"))
    order = np.argsort(-probabilities, axis=-1)
    sorted_probabilities = np.take_along_axis(probabilities, order, axis=-1)
    cumulative = np.cumsum(sorted_probabilities, axis=-1)
    kept_sorted = keep(cumulative, sorted_probabilities)
    kept = np.zeros_like(kept_sorted)
    np.put_along_axis(kept, order, kept_sorted, axis=-1)
    return (np.where(kept, logits, MASKED).astype("float32"),)


def top_p_crossing_token_dropped(logits, p):
    return _top_p_by_rule(logits, p, lambda cumulative, own: cumulative < p)


def top_p_one_token_too_many(logits, p):
    return _top_p_by_rule(logits, p, lambda cumulative, own: cumulative - own < p + own)


def top_p_least_likely_kept(logits, p):
    probabilities = _probabilities(np.asarray(logits, "float64"))
    order = np.argsort(probabilities, axis=-1)
    cumulative = np.cumsum(np.take_along_axis(probabilities, order, axis=-1), axis=-1)
    kept = np.zeros(probabilities.shape, bool)
    np.put_along_axis(kept, order, cumulative - np.take_along_axis(probabilities, order, -1) < p, -1)
    return (np.where(kept, logits, MASKED).astype("float32"),)


# -- sampling with a given draw -------------------------------------------------

def sample_next_token(logits, temperature, uniform):
    return _numpy(generation.sample_from_uniform(generation.filter_logits(logits, temperature), uniform))


def sample_without_temperature(logits, temperature, uniform):
    return sample_next_token(logits, 1.0, uniform)


def sample_times_temperature(logits, temperature, uniform):
    return sample_next_token(logits, 1.0 / temperature, uniform)


def greedy(logits, temperature, uniform):
    return (np.argmax(logits, axis=-1),)


def sample_one_past(logits, temperature, uniform):
    (tokens,) = sample_next_token(logits, temperature, uniform)
    return (np.minimum(tokens + 1, logits.shape[-1] - 1),)


def sample_reversed_draw(logits, temperature, uniform):
    return sample_next_token(logits, temperature, 1.0 - uniform)


# -- the last token's hidden state and a linear head ----------------------------

def last_token_logits(sequence_output, padding_mask, kernel, bias):
    pooled = gpt.LastTokenPooling()(sequence_output, padding_mask)
    head = keras.layers.Dense(kernel.shape[1])
    head.build((None, kernel.shape[0]))
    head.set_weights([kernel, bias])
    return _numpy(head(pooled))


def _head(vectors, kernel, bias):
    return (np.asarray(vectors, "float32") @ kernel + bias,)


def from_last_position(sequence_output, padding_mask, kernel, bias):
    return _head(sequence_output[:, -1], kernel, bias)


def from_first_position(sequence_output, padding_mask, kernel, bias):
    return _head(sequence_output[:, 0], kernel, bias)


def from_first_padding(sequence_output, padding_mask, kernel, bias):
    last = np.minimum(padding_mask.sum(axis=1), sequence_output.shape[1] - 1)
    return _head(sequence_output[np.arange(len(last)), last], kernel, bias)


def from_mean_of_real_tokens(sequence_output, padding_mask, kernel, bias):
    mask = padding_mask[..., None]
    return _head((sequence_output * mask).sum(axis=1) / mask.sum(axis=1), kernel, bias)


def softmax_probabilities(sequence_output, padding_mask, kernel, bias):
    (logits,) = last_token_logits(sequence_output, padding_mask, kernel, bias)
    return (_probabilities(logits).astype("float32"),)


def without_bias(sequence_output, padding_mask, kernel, bias):
    return last_token_logits(sequence_output, padding_mask, kernel, np.zeros_like(bias))


CASES = {
    "gpt.next_token_shift": Case("next_token_inputs_and_targets", next_token_shift, {
        "targets not shifted: each position is asked for its own token": targets_not_shifted,
        "loss weights taken from the inputs' mask (the last real token is asked to predict padding)":
            weights_from_input_mask,
        "padding targets weighted into the loss": every_target_weighted,
        "shifted the wrong way: predicting the previous token": shifted_the_wrong_way,
    }),
    "gpt.top_k": Case("keep_top_k", keep_top_k, {
        "keeps k + 1 tokens": top_k_plus_one,
        "keeps k - 1 tokens": top_k_minus_one,
        "keeps the k smallest logits": top_k_smallest,
        "filtered logits set to 0 instead of a large negative number": top_k_masked_with_zero,
    }),
    "gpt.top_p": Case("keep_top_p", keep_top_p, {
        "the token that takes the mass past p is dropped (keep cumulative < p)":
            top_p_crossing_token_dropped,
        "one token too many kept": top_p_one_token_too_many,
        "least likely tokens kept (sorted ascending)": top_p_least_likely_kept,
    }),
    "gpt.sampling": Case("sample_next_token", sample_next_token, {
        "temperature ignored": sample_without_temperature,
        "logits multiplied by the temperature instead of divided": sample_times_temperature,
        "greedy: the draw ignored": greedy,
        "one token past the draw (first cumulative probability >= the draw, shifted)": sample_one_past,
        "the draw reversed (1 - u)": sample_reversed_draw,
    }),
    "gpt.last_token_logits": Case("last_token_logits", last_token_logits, {
        "the last position read even when it is padding": from_last_position,
        "the first position read ([CLS]-style), which has seen only itself": from_first_position,
        "off by one: the first padding position read": from_first_padding,
        "mean of the real tokens instead of the last one": from_mean_of_real_tokens,
        "probabilities (softmax) returned instead of logits": softmax_probabilities,
        "bias left out": without_bias,
    }),
}
