"""decoding="crf" (shared/ner/crf.py): the likelihood the CRF trains on is that of the
words' labels, the decoder finds the best valid path under the learnt scores, and a model
trained with it is still a plain token-classification directory that carries its scores."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForTokenClassification

from shared.ner import Predictor, TrainConfig
from shared.ner.crf import WordCRF
from shared.ner.decoding import Decoder, allowed_transitions
from shared.ner.encoding import IGNORE
from tests.core.conftest import OVERFIT, Trained, make_dataset, train_capturing

LABELS = ["O", "B-PER", "I-PER"]
ID2LABEL = dict(enumerate(LABELS))


def _random_crf(seed: int) -> WordCRF:
    torch.manual_seed(seed)
    crf = WordCRF(len(LABELS))
    for scores in crf.parameters():
        torch.nn.init.normal_(scores)
    return crf


def _path_score(crf: WordCRF, emissions: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
    c = crf.crf
    score = c.start_transitions[path[0]] + emissions[0, path[0]] + c.end_transitions[path[-1]]
    for t in range(1, len(path)):
        score = score + c.transitions[path[t - 1], path[t]] + emissions[t, path[t]]
    return score


def test_the_likelihood_is_that_of_the_words_not_of_every_sub_token() -> None:
    """Positions 1, 3 and 4 start labelled words; 2 is a later sub-token, 5 a context word
    (IGNORE), 0 and 6 special tokens: the loss is the brute-force negative log-likelihood
    of the three words' labels, per word."""
    crf = _random_crf(0)
    logits = torch.randn(1, 7, len(LABELS))
    labels = torch.tensor([[IGNORE, 1, 2, 2, 0, IGNORE, IGNORE]])
    starts = torch.tensor([[0, 1, 0, 1, 1, 1, 0]])
    words = logits[0, [1, 3, 4]]
    gold = _path_score(crf, words, (1, 2, 0))
    every = torch.stack(
        [_path_score(crf, words, p) for p in itertools.product(range(len(LABELS)), repeat=3)]
    )
    expected = (torch.logsumexp(every, 0) - gold) / 3
    torch.testing.assert_close(crf.loss(logits, labels, starts), expected)


def test_rows_without_words_add_nothing_to_the_loss() -> None:
    crf = _random_crf(1)
    logits = torch.randn(2, 4, len(LABELS))
    labels = torch.tensor([[IGNORE, 1, 0, IGNORE], [IGNORE] * 4])
    starts = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0]])
    alone = crf.loss(logits[:1], labels[:1], starts[:1])
    torch.testing.assert_close(crf.loss(logits, labels, starts), alone)
    assert crf.loss(logits[1:], labels[1:], starts[1:]).item() == 0.0


def test_crf_decoding_is_the_best_valid_path_under_the_learnt_scores() -> None:
    """Texts of one to five words, decoded one by one and many at once (as a batch of a
    bulk job is), each get the brute-force best valid path."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        scores = {
            "start": rng.normal(size=3).tolist(),
            "end": rng.normal(size=3).tolist(),
            "transitions": rng.normal(size=(3, 3)).tolist(),
        }
        texts = [rng.dirichlet(np.ones(3), size=n) for n in (5, 1, 3, 5, 4, 2, 0)]
        best = [_brute_force_best(probs, scores) for probs in texts]
        decoder = Decoder(ID2LABEL, "crf", scores)
        assert [decoder(probs) for probs in texts] == best
        assert decoder.many(texts) == best


def _brute_force_best(probs: np.ndarray, scores: dict) -> list[int]:
    if not len(probs):
        return []
    start_ok, transition_ok = allowed_transitions(ID2LABEL)
    valid = [
        p
        for p in itertools.product(range(3), repeat=len(probs))
        if start_ok[p[0]] and all(transition_ok[a, b] for a, b in itertools.pairwise(p))
    ]
    return list(max(valid, key=lambda path: _total(probs, scores, path)))


def _total(probs: np.ndarray, scores: dict, path: tuple[int, ...]) -> float:
    """A path's score: its words' log-probabilities and the learnt scores along it."""
    t = np.array(scores["transitions"])
    logp = np.log(probs[np.arange(len(path)), list(path)]).sum()
    steps = sum(t[a, b] for a, b in itertools.pairwise(path))
    return float(logp + scores["start"][path[0]] + scores["end"][path[-1]] + steps)


def test_learnt_scores_can_overrule_the_best_label_of_a_word() -> None:
    # The word alone says O (0.6), but the CRF learnt that a name's second word follows.
    probs = np.array([[0.1, 0.8, 0.1], [0.6, 0.1, 0.3]])
    assert Decoder(ID2LABEL, "viterbi")(probs) == [1, 0]
    b_to_i = [[0, 0, 0], [0, 0, 2], [0, 0, 0]]
    scores = {"start": [0, 0, 0], "end": [0, 0, 0], "transitions": b_to_i}
    assert Decoder(ID2LABEL, "crf", scores)(probs) == [1, 2]


def test_scores_that_do_not_fit_the_labels_are_refused() -> None:
    scores = {"start": [0, 0], "end": [0, 0], "transitions": [[0, 0], [0, 0]]}
    with pytest.raises(ValueError, match="3 labels"):
        Decoder(ID2LABEL, "crf", scores)


@pytest.fixture(scope="module")
def crf_run(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    data = make_dataset()
    config = TrainConfig(**{**OVERFIT.__dict__, "base_model": str(tiny_base), "decoding": "crf"})
    out = tmp_path_factory.mktemp("crf") / "model"
    return train_capturing(data, out, config, validation=data, test=data)


def test_a_crf_model_learns_the_tag_grammar_and_tags_its_data(crf_run: Trained) -> None:
    assert crf_run.result.metrics["f1"] == 1.0
    config = json.loads((crf_run.model_dir / "config.json").read_text())
    assert config["ner_decoding"] == "crf"
    index = {label: int(i) for i, label in config["id2label"].items()}
    t = np.array(config["ner_crf"]["transitions"])
    for kind in ("PER", "LOC", "ORG"):
        inside = index[f"I-{kind}"]
        # A name goes on after its first word; nothing in the data goes O → I-X.
        assert t[index[f"B-{kind}"], inside] > t[index["O"], inside]
    predictor = Predictor.load(crf_run.model_dir)  # served by the ONNX export, as in the API
    assert predictor.backend.startswith("onnx")
    assert predictor.decoder.method == "crf"
    # The learnt scores where the grammar allows a step, -inf where it forbids one.
    finite = np.isfinite(predictor.decoder.transition)
    assert np.allclose(predictor.decoder.transition[finite], t[finite])
    text = make_dataset().sentences[0].text
    assert predictor.predict([text])[0]  # the overfit sentence has entities


def test_a_crf_model_is_a_plain_token_classification_directory(crf_run: Trained) -> None:
    weights = load_file(crf_run.model_dir / "model.safetensors")
    assert not [k for k in weights if "crf" in k]
    _, info = AutoModelForTokenClassification.from_pretrained(
        crf_run.model_dir, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
