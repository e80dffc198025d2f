"""Decoding: the token-choice rules, and cached decoding equal to uncached."""

import keras
import numpy as np
import pytest

from reference_impl.generation import (choose_next_token, filter_logits, generate, keep_top_k,
                                       keep_top_p, sample_from_uniform)
from reference_impl.gpt import GPTBackbone, GPTCausalLM

pytestmark = pytest.mark.backend

VOCABULARY_SIZE = 61


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def causal_lm():
    keras.utils.set_random_seed(0)
    return GPTCausalLM(GPTBackbone(vocabulary_size=VOCABULARY_SIZE, num_layers=2, num_heads=2,
                                   hidden_dim=32, intermediate_dim=64, max_sequence_length=32,
                                   dropout=0.1))


def prompts():
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, VOCABULARY_SIZE, size=(3, 16)).astype("int32")
    padding_mask = np.zeros((3, 16), "int32")
    for row, length in enumerate((5, 3, 8)):
        padding_mask[row, :length] = 1
    return token_ids * padding_mask, padding_mask


def test_top_k_keeps_exactly_the_k_largest():
    logits = np.array([[0.1, 3.0, -1.0, 2.0, 0.5]], "float32")
    kept = numpy(keep_top_k(logits, 2)) > -1e8
    np.testing.assert_array_equal(kept, [[False, True, False, True, False]])


@pytest.mark.parametrize("p,expected", [(0.4, 1), (0.79, 2), (0.81, 3), (1.0, 4)])
def test_top_p_keeps_the_smallest_set_reaching_p(p, expected):
    probabilities = np.array([0.05, 0.5, 0.15, 0.3])
    logits = np.log(probabilities)[None].astype("float32")
    kept = numpy(keep_top_p(logits, p))[0] > -1e8
    assert kept.sum() == expected
    # The kept tokens are the most likely ones.
    assert probabilities[kept].min() >= probabilities[~kept].max(initial=0)


def test_greedy_takes_the_argmax():
    logits = np.array([[0.1, 3.0, -1.0], [5.0, 0.0, 4.9]], "float32")
    np.testing.assert_array_equal(numpy(choose_next_token(logits)), [1, 0])


def test_sampling_frequencies_follow_softmax_of_logits_over_temperature():
    logits = np.tile(np.array([[0.0, 1.0, 2.0]], "float32"), (20000, 1))
    draws = numpy(choose_next_token(logits, "sample", temperature=2.0, seed=1))
    expected = np.exp(np.array([0.0, 0.5, 1.0]))
    expected /= expected.sum()
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / len(draws), expected, atol=0.015)


def test_top_k_and_top_p_sampling_never_leave_the_kept_set():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(500, 20)).astype("float32")
    draws = numpy(choose_next_token(logits, "sample", top_k=3, seed=3))
    top3 = np.argsort(-logits, axis=1)[:, :3]
    assert all(d in row for d, row in zip(draws, top3))
    draws = numpy(choose_next_token(logits, "sample", top_p=0.5, seed=4))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    chosen = probabilities[np.arange(500), draws]
    mass_above = np.where(probabilities > chosen[:, None], probabilities, 0).sum(axis=1)
    assert (mass_above < 0.5).all()


def test_sampling_is_repeatable_with_a_seed():
    logits = np.random.default_rng(5).normal(size=(50, 30)).astype("float32")
    first = numpy(choose_next_token(logits, "sample", seed=keras.random.SeedGenerator(7)))
    second = numpy(choose_next_token(logits, "sample", seed=keras.random.SeedGenerator(7)))
    np.testing.assert_array_equal(first, second)


def test_sampling_from_uniform_draws_inverts_the_cumulative_distribution():
    probabilities = np.array([0.2, 0.0, 0.5, 0.3])
    logits = np.log(np.maximum(probabilities, 1e-30))[None].repeat(4, axis=0).astype("float32")
    draws = np.array([0.1, 0.3, 0.69, 0.99], "float32")
    np.testing.assert_array_equal(numpy(sample_from_uniform(logits, draws)), [0, 2, 2, 3])
    # Evenly spaced draws come out in proportion to the probabilities; a masked token never.
    grid = (np.arange(4000) + 0.5) / 4000
    filtered = numpy(filter_logits(np.tile(logits[:1], (4000, 1)), top_k=2))
    counts = np.bincount(numpy(sample_from_uniform(filtered, grid)), minlength=4)
    np.testing.assert_array_equal(counts, [0, 0, 2500, 1500])


def test_temperature_comes_before_top_p():
    logits = np.log(np.array([[0.6, 0.3, 0.1]])).astype("float32")
    # At temperature 1 the top token holds 0.6 < 0.7; at 0.25 it holds 0.94 > 0.7.
    assert (numpy(filter_logits(logits, top_p=0.7)) > -1e8).sum() == 2
    assert (numpy(filter_logits(logits, temperature=0.25, top_p=0.7)) > -1e8).sum() == 1


@pytest.mark.parametrize("choice", [
    dict(strategy="greedy"),
    dict(strategy="sample", temperature=0.8, top_k=10, seed=11),
    dict(strategy="sample", temperature=1.3, top_p=0.9, seed=12),
])
def test_cached_decoding_gives_the_same_tokens_and_logits_as_uncached(causal_lm, choice):
    token_ids, padding_mask = prompts()
    cached_ids, cached_logits = generate(causal_lm, token_ids, padding_mask, max_length=9,
                                         use_cache=True, **choice)
    plain_ids, plain_logits = generate(causal_lm, token_ids, padding_mask, max_length=9,
                                       use_cache=False, **choice)
    np.testing.assert_array_equal(cached_ids, plain_ids)
    np.testing.assert_allclose(cached_logits, plain_logits, atol=1e-5)
    assert cached_logits.shape == (3, 9 - 3, VOCABULARY_SIZE)
    # Prompts are kept; the rest is filled in.
    np.testing.assert_array_equal(cached_ids[padding_mask[:, :9] == 1],
                                  token_ids[:, :9][padding_mask[:, :9] == 1])


def test_greedy_decoding_logits_are_the_models_own(causal_lm):
    token_ids, padding_mask = prompts()
    generated, logits = generate(causal_lm, token_ids, padding_mask, max_length=9)
    full = numpy(causal_lm({"token_ids": generated, "padding_mask": np.ones_like(generated)}))
    # Step s chose position 3 + s from the logits at position 2 + s.
    np.testing.assert_allclose(logits, full[:, 2:8], atol=1e-5)
    np.testing.assert_array_equal(generated[0, 5:], full[0, 4:8].argmax(-1))


def test_bad_requests_name_the_problem(causal_lm):
    token_ids, padding_mask = prompts()
    with pytest.raises(ValueError, match="max_sequence_length"):
        generate(causal_lm, token_ids, padding_mask, max_length=40)
    with pytest.raises(ValueError, match="strategy"):
        generate(causal_lm, token_ids, padding_mask, strategy="beam")
    padding_mask[1] = 0
    with pytest.raises(ValueError, match="at least one token"):
        generate(causal_lm, token_ids, padding_mask)


def test_the_readmes_generate_calls_run():
    """Every `generate(...)` call the READMEs show works as written (one once named a strategy that does not exist)."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    calls = [match for readme in root.glob("**/README.md") if ".venv" not in readme.parts
             for match in re.findall(r"generate\(causal_lm, token_ids,\s*padding_mask,([^`]*)\)`", readme.read_text())]
    assert calls, "the READMEs no longer show a generate(...) call"
    causal_lm = GPTCausalLM(GPTBackbone(vocabulary_size=VOCABULARY_SIZE, num_layers=1, num_heads=2, hidden_dim=16,
                                        intermediate_dim=32, max_sequence_length=128))
    token_ids, padding_mask = prompts()
    for arguments in calls:
        generated, _ = eval(f"generate(causal_lm, token_ids, padding_mask, {arguments.strip()})",
                            {"generate": generate, "causal_lm": causal_lm, "token_ids": token_ids,
                             "padding_mask": padding_mask})
        assert generated.shape[0] == token_ids.shape[0]
