"""Error analysis against a hand-made gold/prediction pair with known counts of every kind."""

from __future__ import annotations

import json

from shared.ner import Sentence, analyse_tags, score
from shared.ner.analysis import KINDS, analyse_sentences

# (tokens, gold tags, predicted tags, what happens)
PAIR = [
    (  # 2 correct
        "Angela Merkel visited Paris .",
        "B-PER I-PER O B-LOC O",
        "B-PER I-PER O B-LOC O",
    ),
    (  # PER cut short (wrong_boundary PER), ORG correct, LOC called ORG (wrong_type LOC)
        "John Smith works for Acme Corp in Berlin .",
        "B-PER I-PER O O B-ORG I-ORG O B-LOC O",
        "B-PER O O O B-ORG I-ORG O B-ORG O",
    ),
    (  # ORG → LOC with "The" added (wrong_type_and_boundary ORG), New York missed (LOC)
        "The United Nations met in New York .",
        "O B-ORG I-ORG O O B-LOC I-LOC O",
        "B-LOC I-LOC I-LOC O O O O O",
    ),
    (  # correct PER, "loudly" as ORG (spurious ORG)
        "Maria sang loudly .",
        "B-PER O O O",
        "B-PER O B-ORG O",
    ),
    (  # one prediction over two gold LOCs: pairs with Berlin (wrong_boundary), Paris missed
        "Berlin and Paris are cities .",
        "B-LOC O B-LOC O O O",
        "B-LOC I-LOC I-LOC O O O",
    ),
]


def sentences() -> tuple[list[Sentence], list[list[str]]]:
    out, predicted = [], []
    for line, (text, gold, pred) in enumerate(PAIR, start=1):
        out.append(Sentence.from_tokens(text.split(), gold.split(), line=line))
        predicted.append(pred.split())
    return out, predicted


def analysis(**kwargs):
    sents, predicted = sentences()
    return analyse_sentences(sents, predicted, **kwargs)


def test_counts_of_every_kind() -> None:
    a = analysis()
    assert a["totals"] == {
        "gold": 10,
        "predicted": 9,
        "correct": 4,
        "wrong_type": 1,
        "wrong_boundary": 2,
        "wrong_type_and_boundary": 1,
        "missed": 2,
        "spurious": 1,
    }
    assert a["sentences"] == 5 and a["types"] == ["LOC", "ORG", "PER"]
    errors = {t: v["errors"] for t, v in a["per_type"].items()}
    zero = dict.fromkeys(KINDS, 0)
    assert errors == {
        "LOC": {**zero, "wrong_type": 1, "wrong_boundary": 1, "missed": 2},
        "ORG": {**zero, "wrong_type_and_boundary": 1, "spurious": 1},
        "PER": {**zero, "wrong_boundary": 1},
    }


def test_per_type_scores_match_seqeval() -> None:
    a = analysis()
    sents, predicted = sentences()
    seqeval = score([s.tags for s in sents], predicted)["per_type"]
    for kind, expected in seqeval.items():
        mine = a["per_type"][kind]
        assert {k: mine[k] for k in expected} == expected, kind
    assert {t: (v["support"], v["predicted"], v["correct"]) for t, v in a["per_type"].items()} == {
        "LOC": (5, 3, 1),
        "ORG": (2, 3, 1),
        "PER": (3, 3, 2),
    }
    assert a["per_type"]["LOC"]["recall"] == 0.2
    assert a["per_type"]["ORG"]["precision"] == 0.3333


def test_confusion_matrix_with_missed_and_spurious() -> None:
    c = analysis()["confusion"]
    assert c["rows"] == ["LOC", "ORG", "PER", "spurious"]
    assert c["columns"] == ["LOC", "ORG", "PER", "missed"]
    assert c["matrix"] == [
        [2, 1, 0, 2],  # LOC: 1 correct + 1 boundary, 1 called ORG, 2 missed
        [1, 1, 0, 0],  # ORG: 1 correct, 1 called LOC
        [0, 0, 3, 0],  # PER: 2 correct + 1 boundary
        [0, 1, 0, 0],  # nothing there, ORG predicted
    ]


def test_examples_carry_character_offsets_of_both_sides() -> None:
    a = analysis()
    by_kind = {(e["kind"], e["type"]): e for e in a["examples"]}
    assert len(a["examples"]) == 7  # one per error
    e = by_kind["wrong_type_and_boundary", "ORG"]
    assert e["sentence"] == 2 and e["line"] == 3
    assert e["gold_span"] == {"start": 4, "end": 18, "label": "ORG", "text": "United Nations"}
    assert e["predicted_span"] == {
        "start": 0,
        "end": 18,
        "label": "LOC",
        "text": "The United Nations",
    }
    assert [g["text"] for g in e["gold"]] == ["United Nations", "New York"]
    assert [p["text"] for p in e["predicted"]] == ["The United Nations"]
    spurious = by_kind["spurious", "ORG"]
    assert spurious["gold_span"] is None and spurious["predicted_span"]["text"] == "loudly"
    missed = [e for e in a["examples"] if e["kind"] == "missed"]
    assert [m["gold_span"]["text"] for m in missed] == ["New York", "Paris"]
    assert all(m["predicted_span"] is None for m in missed)
    for e in a["examples"]:
        for s in [*e["gold"], *e["predicted"]]:
            assert e["text"][s["start"] : s["end"]] == s["text"]


def test_examples_are_capped_per_kind_and_type() -> None:
    sents, predicted = sentences()
    a = analyse_tags(
        [s.text for s in sents] * 3,
        [s.words for s in sents] * 3,
        [s.tags for s in sents] * 3,
        predicted * 3,
        max_examples=2,
    )
    assert a["totals"]["missed"] == 6
    kept = [(e["kind"], e["type"]) for e in a["examples"]]
    assert kept.count(("missed", "LOC")) == 2
    assert kept.count(("spurious", "ORG")) == 2
    assert a["examples_per_kind_and_type"] == 2


def test_a_perfect_prediction_has_no_errors_and_is_json() -> None:
    sents, _ = sentences()
    a = analyse_sentences(sents, [s.tags for s in sents])
    assert a["totals"]["correct"] == a["totals"]["gold"] == 10
    assert all(a["totals"][k] == 0 for k in KINDS)
    assert a["examples"] == []
    assert json.loads(json.dumps(a)) == a
