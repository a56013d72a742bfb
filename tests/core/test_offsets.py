"""CONTRACT §3 for any input: text[start:end] == entity["text"], in order, never overlapping."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.ner import Predictor
from shared.ner.word_tokenizer import WordTokenizer
from tests.core.data import NAMES

# Random Unicode mixed with names the model has learned (so entities do appear), joined by
# the separators users actually send: tabs, newlines, repeated spaces, emoji, RTL marks,
# combining marks, zero-width characters.
SEPARATOR = st.sampled_from(
    [
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        " \u200b",
        "\u200f",
        "\u00a0",
        "\u3000",
        " 😀 ",
        "👍🏽",
        "\u0301",
        "-",
        "'",
        ".",
        ",",
        "",
        "\x00",
        "\ufeff",
    ]
)
PIECE = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(str.lower),
    st.sampled_from(NAMES).map(str.upper),
    st.sampled_from(["New York", "Angela Merkel", "Yuki Tanaka met Ingrid Berg in Kyoto ."]),
    st.text(max_size=12),
    st.sampled_from(["été", "e\u0301", "مرحبا", "שלום", "東京", "İstanbul", "ß", "ﬁ", "Å"]),
)


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(SEPARATOR, PIECE), max_size=40))
    return "".join(sep + piece for sep, piece in parts)


def check(text: str, entities: list[dict[str, Any]]) -> None:
    previous_end = 0
    for e in entities:
        assert set(e) == {"start", "end", "label", "text", "score"}
        assert isinstance(e["start"], int) and isinstance(e["end"], int)
        assert 0 <= e["start"] < e["end"] <= len(text)
        assert text[e["start"] : e["end"]] == e["text"]
        assert e["start"] >= previous_end, "entities overlap or are out of order"
        assert e["text"] == e["text"].strip(), "an entity starts or ends with whitespace"
        assert 0.0 <= e["score"] <= 1.0
        previous_end = e["end"]


def run_property(predictor: Predictor) -> int:
    """Check random inputs (single and batched); return how many entities were checked."""
    found = 0

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.one_of(texts(), st.text()), min_size=1, max_size=4))
    def inner(batch: list[str]) -> None:
        nonlocal found
        results = predictor.predict(batch)
        assert len(results) == len(batch)
        for text, entities in zip(batch, results, strict=True):
            check(text, entities)
            found += len(entities)

    inner()
    return found


def test_offsets_hold_for_random_unicode(predictor: Predictor) -> None:
    assert run_property(predictor) > 0, "no entity was predicted: the property checked nothing"


def test_offsets_hold_with_an_uncased_tokenizer(uncased_predictor: Predictor) -> None:
    # The tokenizer that serves (the Rust one alone, for an ONNX model) lowercases and
    # strips accents: offsets must still be the original text's.
    tokenizer = WordTokenizer.of(uncased_predictor.tokenizer)
    assert tokenizer.backend.normalizer is not None
    assert tokenizer.encode([["ÉTÉ"]])[0].ids == tokenizer.encode([["ete"]])[0].ids
    assert run_property(uncased_predictor) > 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t  ",
        "Angela\u200bMerkel visited  Paris",
        "\u200f\u202bAngela Merkel\u202c met Omar in القاهرة",
        "Yuki\tTanaka\nmet\r\nIngrid  Berg in Kyoto 😀.",
        "e\u0301 Angela\u0301 Merkel",
        "\x00Angela\x00 Paris\ufeff",
        "ANGELA MERKEL visited PARIS",
    ],
)
def test_offsets_on_awkward_inputs(
    predictor: Predictor, uncased_predictor: Predictor, text: str
) -> None:
    for p in (predictor, uncased_predictor):
        [entities] = p.predict([text])
        check(text, entities)


def test_entities_found_in_awkward_spacing(predictor: Predictor) -> None:
    text = "  Yuki\tTanaka\n\nmet   Ingrid Berg in Kyoto ."
    [entities] = predictor.predict([text])
    assert [(e["text"], e["label"]) for e in entities] == [
        ("Yuki\tTanaka", "PER"),
        ("Ingrid Berg", "PER"),
        ("Kyoto", "LOC"),
    ]


def test_predict_of_nothing(predictor: Predictor) -> None:
    assert predictor.predict([]) == []
    assert predictor.predict(["", " "]) == [[], []]


def test_results_do_not_depend_on_the_batch(trained) -> None:
    fp32 = Predictor.load(trained.model_dir, precision="fp32")
    texts = [
        "Angela Merkel visited Paris yesterday .",
        "Oslo",
        "Marcus works for Siemens in Berlin . " * 8,
        "",
        "Kyoto and Oslo are cities .",
    ]
    together = fp32.predict(texts, batch_size=64)
    one_by_one = [fp32.predict([t], batch_size=1)[0] for t in texts]

    def shape(results):
        return [[(e["start"], e["end"], e["label"]) for e in r] for r in results]

    assert shape(together) == shape(one_by_one)
    for a, b in zip(together, one_by_one, strict=True):
        assert [e["score"] for e in a] == pytest.approx([e["score"] for e in b], abs=1e-3)


def test_an_invisible_character_does_not_split_an_entity(predictor: Predictor) -> None:
    [entities] = predictor.predict(["Angela\u200b Merkel visited Paris"])
    assert [(e["text"], e["label"]) for e in entities] == [
        ("Angela\u200b Merkel", "PER"),
        ("Paris", "LOC"),
    ]
