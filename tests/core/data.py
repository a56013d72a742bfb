"""The 20 labelled sentences the tiny model overfits, and helpers to write them as files."""

from __future__ import annotations

import json

SENTENCES: list[tuple[str, str]] = [
    ("Angela Merkel visited Paris yesterday .", "B-PER I-PER O B-LOC O O"),
    ("Marcus works for Siemens in Berlin .", "B-PER O O B-ORG O B-LOC O"),
    ("The office of Acme is in Madrid .", "O O O B-ORG O O B-LOC O"),
    ("Priya Patel lives in Oslo .", "B-PER I-PER O O B-LOC O"),
    ("Globex hired Tomas last week .", "B-ORG O B-PER O O O"),
    ("Yuki Tanaka met Ingrid Berg in Kyoto .", "B-PER I-PER O B-PER I-PER O B-LOC O"),
    ("Omar flew from Cairo to Lima .", "B-PER O O B-LOC O B-LOC O"),
    ("Initech opened a branch in Dublin .", "B-ORG O O O O B-LOC O"),
    ("Lucia Rossi joined Hooli in March .", "B-PER I-PER O B-ORG O O O"),
    ("the weather in Berlin was cold .", "O O O B-LOC O O O"),
    ("Umbrella Corporation sued Acme .", "B-ORG I-ORG O B-ORG O"),
    ("Ingrid likes tea .", "B-PER O O O"),
    ("nothing happened today .", "O O O O"),
    ("Tomas Novak and Omar Haddad talked .", "B-PER I-PER O B-PER I-PER O O"),
    ("Siemens and Globex merged in Paris .", "B-ORG O B-ORG O O B-LOC O"),
    ("Marcus Weber moved to New York .", "B-PER I-PER O O B-LOC I-LOC O"),
    ("She met Priya at Hooli .", "O O B-PER O B-ORG O"),
    ("Kyoto and Oslo are cities .", "B-LOC O B-LOC O O O"),
    ("Yuki called Lucia from Madrid .", "B-PER O B-PER O B-LOC O"),
    ("Initech pays Angela well .", "B-ORG O B-PER O O"),
]

# Words of the sentences, for the tiny tokenizer's vocabulary.
VOCABULARY = sorted({w for text, _ in SENTENCES for w in text.split()})

# Entity names the model learns, for texts that should contain entities.
NAMES = sorted(
    {
        w
        for text, tags in SENTENCES
        for w, t in zip(text.split(), tags.split(), strict=True)
        if t.startswith("B-")
    }
)


def token_rows(sentences: list[tuple[str, str]] = SENTENCES) -> list[tuple[list[str], list[str]]]:
    return [(text.split(), tags.split()) for text, tags in sentences]


def csv_text(sentences: list[tuple[str, str]] = SENTENCES) -> str:
    return "text,labels\n" + "".join(f"{text},{tags}\n" for text, tags in sentences)


def conll_text(sentences: list[tuple[str, str]] = SENTENCES) -> str:
    blocks = []
    for tokens, tags in token_rows(sentences):
        blocks.append("".join(f"{tok} {tag}\n" for tok, tag in zip(tokens, tags, strict=True)))
    return "\n".join(blocks)


def jsonl_text(sentences: list[tuple[str, str]] = SENTENCES) -> str:
    """The sentences as JSONL character spans (computed from the token tags)."""
    lines = []
    for tokens, tags in token_rows(sentences):
        text = " ".join(tokens)
        starts, pos = [], 0
        for tok in tokens:
            starts.append(pos)
            pos += len(tok) + 1
        entities: list[dict[str, object]] = []
        for i, tag in enumerate(tags):
            if tag.startswith("B-"):
                entities.append(
                    {"start": starts[i], "end": starts[i] + len(tokens[i]), "label": tag[2:]}
                )
            elif tag.startswith("I-"):
                entities[-1]["end"] = starts[i] + len(tokens[i])
        lines.append(json.dumps({"text": text, "entities": entities}))
    return "\n".join(lines) + "\n"
