"""Tests for mipeaks.lens: logit lens, peak tokens, thinking-token counting, variants and files."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from mipeaks.generation import generate
from mipeaks.lens import (
    ALPHABETIC,
    PAPER_FIG4_WORDS,
    PAPER_THINKING_TOKENS_R1_LLAMA_8B,
    TTTS_WORDS,
    ThinkingToken,
    count_thinking_tokens,
    lens_tokens,
    load_thinking_tokens,
    logit_lens,
    peak_tokens,
    save_thinking_tokens,
    word_key,
    word_variant_ids,
)

OFFICIAL_FILE = "thinking_tokens_r1_distill_llama_8b.jsonl"


def teacher_forced(model, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Last-block states ``(T, d)`` and the model's own logits ``(T, V)`` for one sequence."""
    captured = {}

    def hook(resid, *, hook):
        captured["h"] = resid.detach().float()
        return resid

    with torch.inference_mode(), model.bridge.hooks(fwd_hooks=[(model.hook_name("last"), hook)]):
        logits = model.hf_model(input_ids=ids[None]).logits[0].float()
    return captured["h"][0], logits


# ---------------------------------------------------------------------------
# Logit lens
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def greedy(embedded):
    """A 16-token greedy generation of the embedded model with last- and layer-3 states."""
    (gen,) = generate(
        embedded, "Let me think about this problem. First,", max_new_tokens=16,
        capture_layers=["last", 3], stop_ids=(),
    )
    return gen


@pytest.mark.slow
def test_lens_last_layer_equals_greedy_generation(embedded, greedy):
    # Paper (logit lens on h_t) == code (the generated token) under greedy decoding.
    assert greedy.token_ids.shape == (16,)
    assert torch.equal(lens_tokens(embedded, greedy), greedy.token_ids)
    last = embedded.resolve_layer("last")
    assert torch.equal(lens_tokens(embedded, greedy.states[last]), greedy.token_ids)
    logits = logit_lens(embedded, greedy, chunk_size=5)  # several chunks, one ragged
    assert logits.shape == (16, len(embedded.tokenizer)) and logits.dtype == torch.float32
    assert torch.equal(logits.argmax(-1), greedy.token_ids)


@pytest.mark.slow
def test_lens_needs_the_final_norm(embedded, greedy):
    # The check above is discriminating: unembedding the block output without the final norm
    # (a plausible bug) does not reproduce the generated tokens.
    h = greedy.states[embedded.resolve_layer("last")]
    with torch.inference_mode():
        raw = embedded.hf_model.get_output_embeddings()(h).argmax(-1)
    assert not torch.equal(raw, greedy.token_ids)


@pytest.mark.slow
def test_lens_equals_teacher_forced_logits(embedded):
    ids = torch.tensor(embedded.tokenizer.encode("The capital of France is Paris. So the answer is"))
    states, logits = teacher_forced(embedded, ids)
    lens = logit_lens(embedded, states, chunk_size=4)
    torch.testing.assert_close(lens, logits, rtol=1e-5, atol=1e-4)
    assert torch.equal(lens_tokens(embedded, states), logits.argmax(-1))


@pytest.mark.slow
def test_lens_other_layer_differs_and_is_selectable(embedded, greedy):
    early = lens_tokens(embedded, greedy, layer=3)
    assert torch.equal(early, lens_tokens(embedded, greedy.states[3]))
    assert not torch.equal(early, greedy.token_ids)  # layer 3 of 30 does not yet "know" the token
    with pytest.raises(ValueError, match="not captured"):
        lens_tokens(embedded, greedy, layer=5)
    with pytest.raises(ValueError, match="d_model"):
        lens_tokens(embedded, torch.zeros(2, 7))


def test_lens_on_tiny_models(tiny):
    ids = torch.randint(0, len(tiny.tokenizer), (12,))
    states, logits = teacher_forced(tiny, ids)
    torch.testing.assert_close(logit_lens(tiny, states, chunk_size=5), logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(lens_tokens(tiny, states), logits.argmax(-1))
    (gen,) = generate(tiny, ids[:4], max_new_tokens=6, capture_layers=["last"], stop_ids=())
    assert torch.equal(lens_tokens(tiny, gen), gen.token_ids)


# ---------------------------------------------------------------------------
# Peak tokens
# ---------------------------------------------------------------------------


class FakeLensModel:
    """A 'model' whose final norm is identity and whose unembedding is the identity matrix (V = d = 4)."""

    def __init__(self):
        self.d_model = 4
        self.n_layers = 2
        self.bridge = SimpleNamespace(ln_final=torch.nn.Identity(), unembed=torch.nn.Linear(4, 4, bias=False))
        with torch.no_grad():
            self.bridge.unembed.weight.copy_(torch.eye(4))
        self.device = torch.device("cpu")

    def resolve_layer(self, layer):
        return self.n_layers - 1 if layer == "last" else int(layer) % self.n_layers


def test_peak_tokens_both_modes_hand_built():
    model = FakeLensModel()
    token_ids = torch.tensor([10, 11, 12, 13, 14])
    # Lens argmax of each last-layer state: 3, 0, 1, 2, 0; of layer 0: all 1.
    last = torch.eye(4)[[3, 0, 1, 2, 0]]
    states = {0: torch.eye(4)[[1] * 5], 1: last}
    peaks = [1, 3, 4]
    assert peak_tokens(None, (token_ids, None), peaks) == [11, 13, 14]  # last index: no placeholder
    assert peak_tokens(model, (token_ids, states), peaks, mode="lens") == [0, 2, 0]
    assert peak_tokens(model, (token_ids, states), peaks, mode="lens", layer=0) == [1, 1, 1]
    assert peak_tokens(model, (token_ids, last), torch.tensor([0]), mode="lens") == [3]
    gen = SimpleNamespace(token_ids=token_ids, states=states)
    assert peak_tokens(model, gen, [4, 0], mode="generated") == [14, 10]
    assert peak_tokens(model, gen, [], mode="lens") == []
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        peak_tokens(model, gen, [5])
    with pytest.raises(ValueError, match="unknown mode"):
        peak_tokens(model, gen, [0], mode="argmax")
    with pytest.raises(ValueError, match="states"):
        peak_tokens(model, (token_ids, None), [0], mode="lens")
    with pytest.raises(ValueError, match="integer"):
        peak_tokens(model, gen, [0.5])


@pytest.mark.slow
def test_peak_tokens_modes_agree_at_last_layer(embedded, greedy):
    peaks = [0, 5, 15]
    assert peak_tokens(embedded, greedy, peaks) == greedy.token_ids[peaks].tolist()
    assert peak_tokens(embedded, greedy, peaks, mode="lens") == greedy.token_ids[peaks].tolist()


# ---------------------------------------------------------------------------
# Counting and variants (embedded tokenizer: SmolLM2's 49k GPT-2-style vocabulary)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def one_id(tok, text: str) -> int:
    ids = tok.encode(text, add_special_tokens=False)
    assert len(ids) == 1, (text, ids)
    return ids[0]


def test_word_key():
    assert word_key(" So") == "So" and word_key("So\n") == "So"
    assert word_key(" \n\n") == "\n\n" and word_key("\n") == "\n"
    assert word_key(" ") == " "


def test_count_filters_pools_and_ranks(tok):
    so, sp_so, hmm, wait = one_id(tok, "So"), one_id(tok, " So"), one_id(tok, " Hmm"), one_id(tok, " Wait")
    junk = [one_id(tok, " "), one_id(tok, "\n\n"), one_id(tok, "\\"), one_id(tok, "1")]
    problems = [
        [so, *junk, hmm, wait],
        torch.tensor([sp_so, wait, *junk]),
        [sp_so, hmm],
    ]
    out = count_thinking_tokens(tok, problems)
    # "So" + " So" pool to So: 3; Hmm 2 and Wait 2 tie -> alphabetical; junk dropped.
    assert [(t.word, t.freq) for t in out] == [("So", 3), ("Hmm", 2), ("Wait", 2)]
    assert {so, sp_so} <= set(out[0].token_ids)
    assert out[0].token_ids == tuple(word_variant_ids(tok, "So"))
    assert [t.word for t in count_thinking_tokens(tok, problems, top=2)] == ["So", "Hmm"]
    everything = {t.word: t.freq for t in count_thinking_tokens(tok, problems, alphabetic=False)}
    assert everything == {"So": 3, "Hmm": 2, "Wait": 2, " ": 2, "\n\n": 2, "\\": 2, "1": 2}
    assert count_thinking_tokens(tok, []) == []
    with pytest.raises(ValueError, match="top"):
        count_thinking_tokens(tok, problems, top=-1)


class ListTokenizer:
    """A tokenizer whose id ``i`` decodes to ``vocab[i]`` (for vocabularies built by hand)."""

    def __init__(self, vocab: list[str]):
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.vocab)

    def batch_decode(self, seqs, **kwargs) -> list[str]:
        return ["".join(self.vocab[i] for i in seq) for seq in seqs]


def test_count_on_a_hand_built_vocabulary():
    vocab = ["So", " So", " so", " ", "\n\n", "\\(", " \\(", "1", " Wait", "x2", " Hmm", "SO"]
    tok = ListTokenizer(vocab)
    problems = [[0, 3, 4, 5, 7, 8, 9], [1, 2, 6, 8, 10], [11, 10, 1]]
    out = count_thinking_tokens(tok, problems)
    assert [(t.word, t.freq, t.token_ids) for t in out] == [
        ("So", 3, (0, 1)), ("Hmm", 2, (10,)), ("Wait", 2, (8,)), ("SO", 1, (11,)), ("so", 1, (2,)),
    ]
    loose = count_thinking_tokens(tok, problems, case_sensitive=False, top=1)
    assert loose == [ThinkingToken("So", 3, (0, 1, 2, 11))]
    raw = {t.word: t.freq for t in count_thinking_tokens(tok, problems, alphabetic=False)}
    assert raw[" "] == 1 and raw["\n\n"] == 1 and raw["\\("] == 2 and raw["1"] == 1 and raw["x2"] == 1


def test_count_unpooled_keeps_whitespace_variants_apart():
    """The official notebook's Fig. 4 counting: " So" and "So" are separate bars, filter on the stripped text."""
    vocab = ["So", " So", " so", " ", "\n\n", "1", " Wait", " Hmm"]
    tok = ListTokenizer(vocab)
    problems = [[0, 1, 1, 3, 4, 6], [1, 2, 5, 7], [0, 7, 7]]
    out = count_thinking_tokens(tok, problems, pool_whitespace=False)
    # " So": 3, " Hmm": 3 (tie -> by text), "So": 2, " Wait": 1, " so": 1; " ", "\n\n", "1" filtered out.
    assert [(t.word, t.freq, t.token_ids) for t in out] == [
        (" Hmm", 3, (7,)), (" So", 3, (1,)), ("So", 2, (0,)), (" Wait", 1, (6,)), (" so", 1, (2,)),
    ]
    pooled = {t.word: t.freq for t in count_thinking_tokens(tok, problems)}
    assert pooled["So"] == 5 and pooled["Hmm"] == 3


def test_alphabetic_filter_is_the_papers():
    kept = [w for w, _ in PAPER_THINKING_TOKENS_R1_LLAMA_8B if ALPHABETIC.match(w.strip())]
    assert "x" in kept and " " not in kept and "1" not in kept and "\\(" not in kept
    # The paper's Fig. 4 words are the official list's top-15 alphabetic words (bar order aside).
    assert set(kept[:15]) == set(PAPER_FIG4_WORDS)
    assert len(TTTS_WORDS) == 15 and set(TTTS_WORDS) <= set(kept)


@pytest.mark.parametrize("word", ["So", "Let", "Okay", "Wait", "Therefore", "x"])
def test_word_variant_ids(tok, word):
    ids = word_variant_ids(tok, word)
    assert ids == sorted(set(ids)) and ids
    assert all(tok.decode([i]).strip() == word for i in ids)  # case-sensitive by default
    loose = word_variant_ids(tok, word, case_sensitive=False)
    assert set(ids) <= set(loose)
    assert all(tok.decode([i]).strip().lower() == word.lower() for i in loose)
    # Completeness: every spelling the tokenizer encodes as a single token is found.
    for variant in (word, " " + word, word.lower(), " " + word.lower(), word.upper(), " " + word.upper()):
        enc = tok.encode(variant, add_special_tokens=False)
        if len(enc) == 1:
            assert enc[0] in loose, variant
            if variant.strip() == word:
                assert enc[0] in ids, variant


def test_word_variant_ids_so(tok):
    so, sp_so = one_id(tok, "So"), one_id(tok, " So")
    assert {so, sp_so} <= set(word_variant_ids(tok, "So"))
    assert {one_id(tok, " so"), one_id(tok, "so")} <= set(word_variant_ids(tok, "So", case_sensitive=False))
    assert one_id(tok, " so") not in word_variant_ids(tok, "So")
    assert word_variant_ids(tok, "So") == word_variant_ids(tok, " So")  # the word is a key, not a token
    assert word_variant_ids(tok, "Supercalifragilistic") == []  # multi-token: no single id
    with pytest.raises(ValueError):
        word_variant_ids(tok, "")


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    tokens = [ThinkingToken("So", 3, (5, 1)), ThinkingToken("\n\n", 2, ()), ThinkingToken("Hmm", 1, [7])]
    path = save_thinking_tokens(tokens, tmp_path / "sub" / "tt.jsonl")
    assert load_thinking_tokens(path) == tokens
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {"word": "So", "freq": 3, "token_ids": [5, 1]}
    with pytest.raises(Exception):
        tokens[0].freq = 4  # frozen


def test_load_official_file(shared_data):
    tokens = load_thinking_tokens(shared_data / OFFICIAL_FILE)
    assert len(tokens) == 30
    assert (tokens[0].word, tokens[0].freq, tokens[0].token_ids) == ("So", 394, (2100, 4516, 78012))
    assert [(t.word, t.freq) for t in tokens] == list(PAPER_THINKING_TOKENS_R1_LLAMA_8B)


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ('["So", 1, []]', "JSON object"),
        ('{"word": "So", "freq": 1}', "missing"),
        ('{"word": "So", "freq": -1, "token_ids": []}', "freq"),
        ('{"word": "So", "freq": 1, "token_ids": [1, "2"]}', "token_ids"),
        ('{"word": 3, "freq": 1, "token_ids": []}', "word"),
    ],
)
def test_load_malformed_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"word": "So", "freq": 1, "token_ids": [1]}\n\n' + line + "\n")
    with pytest.raises(ValueError, match=message) as err:
        load_thinking_tokens(path)
    assert f"{path}:3" in str(err.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_thinking_tokens(tmp_path / "none.jsonl")
