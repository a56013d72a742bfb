"""A small synthetic labelled dataset the tiny model can learn in seconds."""

from __future__ import annotations

import random

PEOPLE = ["Angela", "Marcus", "Priya", "Tomas", "Yuki", "Ingrid", "Omar", "Lucia"]
SURNAMES = ["Merkel", "Weber", "Patel", "Novak", "Tanaka", "Berg", "Haddad", "Rossi"]
PLACES = ["Berlin", "Paris", "Madrid", "Oslo", "Kyoto", "Lima", "Cairo", "Dublin"]
ORGS = ["Siemens", "Acme", "Globex", "Initech", "Umbrella", "Hooli"]
TEMPLATES = [
    ("{p} {s} lives in {l} .", ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]),
    ("{p} works for {o} in {l} .", ["B-PER", "O", "O", "B-ORG", "O", "B-LOC", "O"]),
    ("the office of {o} is in {l} .", ["O", "O", "O", "B-ORG", "O", "O", "B-LOC", "O"]),
    ("yesterday {p} {s} visited {l} .", ["O", "B-PER", "I-PER", "O", "B-LOC", "O"]),
    ("{o} hired {p} last week .", ["B-ORG", "O", "B-PER", "O", "O", "O"]),
]


def sentences(n: int = 120, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        template, tags = rng.choice(TEMPLATES)
        text = template.format(
            p=rng.choice(PEOPLE), s=rng.choice(SURNAMES), l=rng.choice(PLACES), o=rng.choice(ORGS)
        )
        tokens = text.split()
        assert len(tokens) == len(tags), text
        out.append((tokens, tags))
    return out


def csv_text(n: int = 120, seed: int = 0) -> str:
    lines = ["text,labels"]
    for tokens, tags in sentences(n, seed):
        lines.append(f"{' '.join(tokens)},{' '.join(tags)}")
    return "\n".join(lines) + "\n"


def vocabulary() -> list[str]:
    words = set(PEOPLE + SURNAMES + PLACES + ORGS)
    for template, _ in TEMPLATES:
        words.update(w for w in template.split() if not w.startswith("{"))
    return sorted(words)


def near_miss(token: str) -> str:
    """The token with its last character changed, always to a different one.

    Appending a fixed character instead fails one time in 64: when the token already
    ends in it, the "wrong" key is the right one (a CI run hit exactly that).
    """
    return token[:-1] + ("B" if token.endswith("A") else "A")
