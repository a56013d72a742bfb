"""The accuracy features, each behind a TrainConfig field: casing, document context,
BIO-constrained Viterbi decoding, layer-wise learning-rate decay."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from transformers import AutoModelForTokenClassification, AutoTokenizer

from shared.ner import Predictor, TrainConfig, evaluate, parse_dataset, train
from shared.ner.casing import LOWER, MIXED, NONE, NUMBER, TITLE, UPPER, word_shape
from shared.ner.context import document_contexts
from shared.ner.decoding import Decoder
from shared.ner.encoding import IGNORE, WindowEncoder
from shared.ner.labels import label_list
from shared.ner.training import _features, _optimizer
from tests.core.data import conll_text
from tests.tiny_model import make_tiny_bert

LABELS = label_list(["LOC", "PER"])  # O B-LOC I-LOC B-PER I-PER
ID2LABEL = dict(enumerate(LABELS))


def entity_spans(results: list[list[dict[str, Any]]]) -> list[list[tuple[str, str]]]:
    return [[(e["text"], e["label"]) for e in r] for r in results]


# ---------------------------------------------------------------- casing


@pytest.mark.parametrize(
    ("word", "shape"),
    [
        ("bush", LOWER),
        ("Bush", TITLE),
        ("I", TITLE),
        ("NATO", UPPER),
        ("U.S.", UPPER),
        ("McDonald", MIXED),
        ("iPhone", MIXED),
        ("1996-08-22", NUMBER),
        ("3:1", NUMBER),
        ("Été", TITLE),
        (".", NONE),
        ("--", NONE),
    ],
)
def test_word_shapes(word: str, shape: int) -> None:
    assert word_shape(word) == shape


# The same words in the same places; only the capital letter tells a name from a noun.
CASE_ONLY = [
    ("we saw Bush today .", "O O B-PER O O"),
    ("we saw bush today .", "O O O O O"),
    ("they like Apple now .", "O O B-LOC O O"),
    ("they like apple now .", "O O O O O"),
] * 3
CASE_TEXTS = ["we saw Bush today .", "we saw bush today .", "they like Apple now ."]


@pytest.fixture(scope="module")
def case_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = {w for text, _ in CASE_ONLY for w in text.split()}
    return make_tiny_bert(tmp_path_factory.mktemp("case") / "uncased", words, lowercase=True)


def train_case_only(base: Path, out: Path, casing: bool) -> Path:
    data = parse_dataset(
        "text,labels\n" + "".join(f"{t},{g}\n" for t, g in CASE_ONLY), "csv", "case.csv"
    )
    config = TrainConfig(
        base_model=str(base),
        casing=casing,
        epochs=25,
        batch_size=4,
        learning_rate=5e-3,
        warmup_ratio=0.0,
        patience=25,
        seed=3,
    )
    return train(data, out, config, validation=data, test=data).model_dir


@pytest.fixture(scope="module")
def casing_model(case_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_case_only(case_base, tmp_path_factory.mktemp("cased-run") / "m", casing=True)


def test_with_casing_an_uncased_encoder_tells_bush_from_bush(casing_model: Path) -> None:
    predicted = Predictor.load(casing_model).predict(CASE_TEXTS)
    assert entity_spans(predicted) == [[("Bush", "PER")], [], [("Apple", "LOC")]]


def test_without_casing_an_uncased_encoder_cannot(case_base: Path, tmp_path: Path) -> None:
    model = train_case_only(case_base, tmp_path / "m", casing=False)
    bush, lower_bush, _ = Predictor.load(model).predict(CASE_TEXTS)

    # The tokenizer lower-cases: both texts are the same input, so the same answer.
    def where(entities: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
        return [(e["start"], e["end"], e["label"]) for e in entities]

    assert where(bush) == where(lower_bush)


def test_a_casing_model_is_a_plain_hf_directory_that_records_the_feature(
    casing_model: Path,
) -> None:
    config = json.loads((casing_model / "config.json").read_text())
    assert config["ner_casing"] == "shape6" and config["type_vocab_size"] == 6
    model = AutoModelForTokenClassification.from_pretrained(casing_model)
    assert model.bert.embeddings.token_type_embeddings.num_embeddings == 6
    # The stock pipeline loads and runs it (it sends no shapes, so it may miss names).
    from transformers import pipeline

    tagger = pipeline("token-classification", model=str(casing_model), device="cpu")
    assert isinstance(tagger("we saw Bush today ."), list)


def test_casing_keeps_exact_offsets(casing_model: Path) -> None:
    predictor = Predictor.load(casing_model)
    texts = [
        "we  saw\tBush\n\ntoday .",
        "\u200bwe saw Bush today 😀 and Apple.",
        "WE SAW BUSH TODAY .",
        "we saw Bush today . " * 80,  # several windows
    ]
    for text, entities in zip(texts, predictor.predict(texts), strict=True):
        assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)
    assert entity_spans(predictor.predict(texts[:2])) == [
        [("Bush", "PER")],
        [("Bush", "PER"), ("Apple", "LOC")],
    ]


def test_casing_on_an_encoder_without_token_types_trains_without_it(tmp_path: Path) -> None:
    from transformers import DistilBertConfig, DistilBertModel

    base = make_tiny_bert(tmp_path / "bert", ["Angela", "visited", "Paris", "."])
    vocab_size = len(AutoTokenizer.from_pretrained(base))
    DistilBertModel(
        DistilBertConfig(
            vocab_size=vocab_size,
            dim=32,
            n_layers=1,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=64,
        )
    ).save_pretrained(base)  # replaces the BERT weights and config
    data = parse_dataset("text,labels\nAngela visited Paris .,B-PER O B-LOC O\n", "csv")
    config = TrainConfig(base_model=str(base), casing=True, epochs=1, batch_size=1)
    out = train(data, tmp_path / "m", config, validation=data, test=data).model_dir
    assert json.loads((out / "config.json").read_text())["ner_casing"] is None
    assert Predictor.load(out).casing is False


# ---------------------------------------------------------------- document context

DOCUMENTS = (
    "-DOCSTART- -X- -X- O\n\n"
    "Angela B-PER\nvisited O\nParis B-LOC\n\n"
    "Ingrid B-PER\nlikes O\ntea O\n\n"
    "-DOCSTART- -X- -X- O\n\n"
    "Omar B-PER\nflew O\n\n"
)


def test_conll_reader_links_sentences_within_a_document_only() -> None:
    first, second, third = parse_dataset(DOCUMENTS, "conll").sentences
    assert first.before is None and first.after is second
    assert second.before is first and second.after is None  # -DOCSTART- ends the document
    assert third.before is None and third.after is None


def test_a_conll_file_without_docstart_is_one_document() -> None:
    sentences = parse_dataset(conll_text(), "conll").sentences
    assert all(a.after is b and b.before is a for a, b in itertools.pairwise(sentences))


def one_per_word(word_lists):
    return [[1] * len(words) for words in word_lists]


def test_context_is_the_nearest_words_within_the_window() -> None:
    text = "-DOCSTART- O\n\n" + "\n".join(
        "".join(f"w{s}{i} O\n" for i in range(4)) for s in range(5)
    )
    sentences = parse_dataset(text, "conll").sentences  # 5 sentences of 4 words
    contexts = document_contexts(sentences, one_per_word, content=10)
    middle = contexts[2]  # 6 sub-tokens of room: 3 on each side, nearest first
    assert middle.left == ["w11", "w12", "w13"] and middle.right == ["w30", "w31", "w32"]
    # At a document's start, the room left of it goes to the right.
    assert contexts[0].left == [] and contexts[0].right == [f"w1{i}" for i in range(4)] + [
        "w20",
        "w21",
    ]
    assert all(len(c.left) + len(c.right) + 4 <= 10 for c in contexts)
    # No room: no context.
    assert document_contexts(sentences, one_per_word, content=4)[2].left == []


def test_training_windows_label_the_sentence_only(tiny_base: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    data = parse_dataset(DOCUMENTS, "conll")
    labels = label_list(["LOC", "PER"])
    encoder = WindowEncoder(tokenizer, 64, 16)
    config = TrainConfig(context_length=32)
    features = _features(encoder, tokenizer, data, labels, config, casing=True)
    assert len(features) == 3
    second = features[1]  # "Ingrid likes tea" after "Angela visited Paris" as context
    assert len(second["input_ids"]) <= 32
    words = tokenizer.convert_ids_to_tokens(second["input_ids"])
    assert words[:5] == ["[CLS]", "Angela", "visited", "Paris", "Ingrid"]
    assert second["labels"][:4] == [IGNORE] * 4  # context: seen, not learnt
    assert [lab for lab in second["labels"] if lab != IGNORE] == [labels.index("B-PER"), 0, 0]
    assert second["token_type_ids"][:5] == [NONE, TITLE, LOWER, TITLE, TITLE]
    first = features[0]  # "Angela visited Paris" with "Ingrid likes tea" after it
    assert [lab for lab in first["labels"] if lab != IGNORE] == [
        labels.index("B-PER"),
        0,
        labels.index("B-LOC"),
    ]
    assert len([lab for lab in first["labels"] if lab == IGNORE]) == 2 + 3  # [CLS] [SEP] + 3


def test_packed_windows_cut_documents_and_label_every_word_once(tiny_base: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    text = "-DOCSTART- O\n\n" + conll_text() + "\n-DOCSTART- O\n\nOmar B-PER\nflew O\n"
    data = parse_dataset(text, "conll")  # two documents: 20 sentences, then one
    labels = label_list(["LOC", "ORG", "PER"])
    config = TrainConfig(context_length=32, context_mode="packed")
    features = _features(WindowEncoder(tokenizer, 64, 16), tokenizer, data, labels, config, False)
    assert all(len(f["input_ids"]) <= 32 for f in features)
    assert len(features) > 4  # the first document needs several windows
    # Every word is labelled in exactly one window: the first sub-tokens' labels, in
    # order, are the gold tags of both documents.
    firsts = []
    for f in features:
        ids = f["input_ids"]
        for pos, lab in enumerate(f["labels"]):
            if lab != IGNORE and not tokenizer.convert_ids_to_tokens(ids[pos]).startswith("##"):
                firsts.append(labels[lab])
    assert firsts == [t for s in data.sentences for t in s.tags]
    # The last document is a window of its own: no words of another document in it.
    last = tokenizer.convert_ids_to_tokens(features[-1]["input_ids"])
    assert last == ["[CLS]", "Omar", "flew", "[SEP]"]


# The same sentence, "Jordan won .", is a person in one document and a country in the
# other: only the sentence before it says which.
AMBIGUOUS = [
    ("the player spoke .", "O O O O"),
    ("the country voted .", "O O O O"),
]


def ambiguous_documents(repeat: int) -> str:
    blocks = []
    for _ in range(repeat):
        for (text, tags), kind in zip(AMBIGUOUS, ("PER", "LOC"), strict=True):
            blocks.append("-DOCSTART- O\n")
            rows = zip(text.split(), tags.split(), strict=True)
            blocks.append("".join(f"{w} {t}\n" for w, t in rows))
            blocks.append(f"Jordan B-{kind}\nwon O\n. O\n")
    return "\n".join(blocks)


@pytest.mark.parametrize("mode", ["around", "packed"])
def test_context_decides_what_the_sentence_alone_cannot(tmp_path: Path, mode: str) -> None:
    words = {w for text, _ in AMBIGUOUS for w in text.split()} | {"Jordan", "won"}
    base = make_tiny_bert(tmp_path / "base", words)
    data = parse_dataset(ambiguous_documents(4), "conll")
    runs = {}
    for length in (0, 32):
        config = TrainConfig(
            base_model=str(base),
            context_length=length,
            context_mode=mode,
            casing=False,  # the names look alike anyway; this is about context alone
            epochs=80,  # it sits at F1 0.5 for a while before the context pays off
            batch_size=2,
            learning_rate=3e-3,
            warmup_ratio=0.0,
            patience=80,
            seed=1,
        )
        runs[length] = train(data, tmp_path / f"m{length}", config, validation=data, test=data)
    # Without context the two "Jordan won ." are one input: at most half of them right.
    assert runs[0].metrics["f1"] <= 0.75
    assert runs[32].metrics["f1"] == 1.0
    # The saved model evaluates sentences with their context, as it was trained.
    # fp32: on an AMX CPU a loaded model runs in bf16, which can flip the tiny model's
    # narrow decisions; precision is not what this test is about.
    predictor = Predictor.load(runs[32].model_dir, precision="fp32")
    assert (predictor.context_length, predictor.context_mode) == (32, mode)
    assert evaluate(predictor, parse_dataset(ambiguous_documents(1), "conll"))["f1"] == 1.0
    # A text is its own context: the preceding sentence in the text does the same.
    texts = ["the player spoke . Jordan won .", "the country voted . Jordan won ."]
    assert entity_spans(predictor.predict(texts)) == [[("Jordan", "PER")], [("Jordan", "LOC")]]


# ---------------------------------------------------------------- decoding


def probs(*rows: dict[str, float]) -> np.ndarray:
    out = np.full((len(rows), len(LABELS)), 0.01, dtype=np.float32)
    for i, row in enumerate(rows):
        for label, p in row.items():
            out[i, LABELS.index(label)] = p
    return out


def labels_of(ids: list[int]) -> list[str]:
    return [LABELS[i] for i in ids]


def test_viterbi_never_starts_an_entity_with_i() -> None:
    # argmax: O I-PER (an entity that starts inside); Viterbi repairs it to B-PER I-PER,
    # because the first word's B-PER is nearly as likely as O.
    matrix = probs({"O": 0.5, "B-PER": 0.45}, {"I-PER": 0.9})
    assert labels_of(Decoder(ID2LABEL, "argmax")(matrix)) == ["O", "I-PER"]
    assert labels_of(Decoder(ID2LABEL, "viterbi")(matrix)) == ["B-PER", "I-PER"]


def test_viterbi_keeps_an_entity_of_one_type() -> None:
    matrix = probs({"B-LOC": 0.9}, {"I-PER": 0.5, "I-LOC": 0.4}, {"O": 0.9})
    assert labels_of(Decoder(ID2LABEL, "viterbi")(matrix)) == ["B-LOC", "I-LOC", "O"]
    first = probs({"I-LOC": 0.6, "O": 0.3})
    assert labels_of(Decoder(ID2LABEL, "viterbi")(first)) == ["O"]


def test_viterbi_equals_argmax_on_valid_sequences() -> None:
    rng = np.random.default_rng(0)
    valid = probs({"B-PER": 0.9}, {"I-PER": 0.8}, {"O": 0.9}, {"B-LOC": 0.7}, {"B-LOC": 0.6})
    noisy = valid + rng.uniform(0, 0.05, valid.shape).astype(np.float32)
    assert Decoder(ID2LABEL, "viterbi")(noisy) == Decoder(ID2LABEL, "argmax")(noisy)
    assert Decoder(ID2LABEL)(np.zeros((0, len(LABELS)))) == []


def test_decoding_is_recorded_and_can_be_overridden(casing_model: Path) -> None:
    assert json.loads((casing_model / "config.json").read_text())["ner_decoding"] == "crf"
    assert Predictor.load(casing_model).decoder.method == "crf"
    assert Predictor.load(casing_model, decoding="viterbi").decoder.method == "viterbi"
    assert Predictor.load(casing_model, decoding="argmax").decoder.method == "argmax"
    with pytest.raises(ValueError, match="decoding"):
        Predictor.load(casing_model, decoding="beam")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("decoding", "beam"),
        ("context_mode", "both"),
        ("context_length", 4),
        ("layer_decay", 0),
        ("ema_decay", 1.0),
    ],
)
def test_training_refuses_bad_feature_values(
    tiny_base: Path, tmp_path: Path, field: str, value: object
) -> None:
    data = parse_dataset("text,labels\nAngela visited Paris .,B-PER O B-LOC O\n", "csv")
    # Refused when the config is built (the CLI's and the API's validation) or, for what
    # its bounds let through, when training starts: either way before anything is written.
    with pytest.raises(ValueError, match=field):
        config = TrainConfig(base_model=str(tiny_base), **{field: value})  # type: ignore[arg-type]
        train(data, tmp_path / "m", config, validation=data, test=data)
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------- schedule


def test_layer_decay_gives_lower_layers_smaller_learning_rates(tiny_base: Path) -> None:
    model = AutoModelForTokenClassification.from_pretrained(tiny_base, num_labels=5)
    optimizer = _optimizer(model, TrainConfig(learning_rate=1e-3, layer_decay=0.5))
    lr_of = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            lr_of[id(param)] = group["lr"]
    named = dict(model.named_parameters())
    # 2 layers: classifier 1e-3, layer 1 5e-4, layer 0 2.5e-4, embeddings 1.25e-4.
    assert lr_of[id(named["classifier.weight"])] == pytest.approx(1e-3)
    assert lr_of[id(named["bert.encoder.layer.1.output.dense.weight"])] == pytest.approx(5e-4)
    assert lr_of[id(named["bert.encoder.layer.0.output.dense.weight"])] == pytest.approx(2.5e-4)
    assert lr_of[id(named["bert.embeddings.word_embeddings.weight"])] == pytest.approx(1.25e-4)
    # Without decay every group has the base rate, and biases still skip weight decay.
    plain = _optimizer(model, TrainConfig(learning_rate=1e-3))
    assert {g["lr"] for g in plain.param_groups} == {1e-3}
    assert {g["weight_decay"] for g in plain.param_groups} == {0.0, 0.01}
