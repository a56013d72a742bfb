"""Readers for the three data formats of CONTRACT §1, with line-numbered validation.

Every reader turns its records into `Sentence`s of the same shape — the text,
its words as character spans, one IOB2 tag per word — so training, evaluation
and prediction never care where the data came from. CSV and CoNLL give tokens:
their text is the tokens joined by single spaces. JSONL gives text and character
spans: the text is split with `words.split_words`, also at every entity boundary.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import lzma
import random
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .problems import DatasetError, DatasetTooLarge, Problem, unreadable_json
from .tags import iob1_to_iob2, spans_to_tags, tag_error, tags_to_spans
from .words import is_word_char, split_at, split_words

FORMATS = ("csv", "conll", "jsonl")
EXTENSIONS = {
    ".csv": "csv",
    ".zip": "csv",
    ".txt": "conll",
    ".conll": "conll",
    ".iob": "conll",
    ".bio": "conll",
    ".jsonl": "jsonl",
    ".json": "jsonl",
}
SKIP_HINT = (
    "pass --skip-invalid (API: skip_invalid=true) to leave these sentences out and use the rest"
)


@dataclass
class Sentence:
    """One training or evaluation example: text, its words as spans, one IOB2 tag per word."""

    text: str
    words: list[tuple[int, int]]
    tags: list[str]
    line: int = 0
    # The neighbouring sentences of the same document, where the format keeps documents
    # (CoNLL: `-DOCSTART-` separates them); the source of document context (context.py).
    before: Sentence | None = field(default=None, repr=False, compare=False)
    after: Sentence | None = field(default=None, repr=False, compare=False)

    @property
    def tokens(self) -> list[str]:
        return [self.text[a:b] for a, b in self.words]

    @classmethod
    def from_tokens(cls, tokens: Sequence[str], tags: Sequence[str], line: int = 0) -> Sentence:
        words = []
        pos = 0
        for tok in tokens:
            words.append((pos, pos + len(tok)))
            pos += len(tok) + 1
        return cls(" ".join(tokens), words, list(tags), line)

    def entities(self) -> list[dict[str, object]]:
        """The gold entities as character spans (the shape of CONTRACT §3, without a score)."""
        out: list[dict[str, object]] = []
        for first, last, kind in tags_to_spans(self.tags):
            start, end = self.words[first][0], self.words[last - 1][1]
            out.append({"start": start, "end": end, "label": kind, "text": self.text[start:end]})
        return out


@dataclass
class Dataset:
    sentences: list[Sentence]
    format: str
    name: str = ""
    warnings: list[str] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def entity_types(self) -> list[str]:
        return sorted({t[2:] for s in self.sentences for t in s.tags if t != "O"})

    def stats(self) -> dict[str, object]:
        counts: Counter[str] = Counter()
        for s in self.sentences:
            for _, _, kind in tags_to_spans(s.tags):
                counts[kind] += 1
        return {
            "sentences": len(self.sentences),
            "tokens": sum(len(s.words) for s in self.sentences),
            "labels": dict(sorted(counts.items())),
        }

    def subset(self, sentences: list[Sentence], suffix: str) -> Dataset:
        return Dataset(sentences, self.format, f"{self.name}{suffix}", list(self.warnings))


# ---------------------------------------------------------------- decoding


def _decode(data: bytes) -> str:
    """UTF-8 text (a BOM is dropped); undecodable bytes are reported by line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                problems.append(
                    Problem(
                        number,
                        f"bytes that are not UTF-8 at column {err.start + 1} "
                        f"({raw[err.start : err.start + 4]!r}); save the file as UTF-8",
                    )
                )
        raise DatasetError(problems) from None


# Archive bounds. The central directory is checked before anything is decompressed, then
# the bytes are counted while they stream, because the sizes a zip declares can lie.
MAX_ZIP_ENTRIES = 1000
DEFAULT_MAX_UNPACKED_BYTES = 512 * 1024 * 1024
# What zipfile itself can decompress; anything else (Deflate64, AES, PPMd...) is refused
# up front rather than failing half-way through.
_ZIP_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_ARCHIVE_SUFFIXES = (".zip", ".jar", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".zst")
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!")


def _zip_problem(message: str) -> DatasetError:
    return DatasetError([Problem(1, message)])


def _odd_member_name(info: zipfile.ZipInfo) -> str | None:
    """Why a member's name is refused, or None. `orig_filename` is the name as stored:
    zipfile cuts `filename` at a NUL, which would hide it."""
    raw = info.orig_filename
    if any(ord(c) < 32 or c == "\x7f" for c in raw):
        return "holds a control character (NUL, newline...)"
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        return "is an absolute path"
    if ".." in raw.replace("\\", "/").split("/"):
        return "climbs out of the archive (..)"
    return None


def _check_archive(archive: zipfile.ZipFile, max_bytes: int) -> zipfile.ZipInfo:
    """The one .csv member to read, once the whole central directory passed the checks."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise DatasetTooLarge(
            [Problem(1, f"the .zip holds {len(infos)} entries; at most {MAX_ZIP_ENTRIES}")]
        )
    declared = sum(i.file_size for i in infos)
    if declared > max_bytes:
        raise DatasetTooLarge(
            [Problem(1, f"the .zip expands to {declared} bytes; the limit is {max_bytes}")]
        )
    for info in infos:
        why = _odd_member_name(info)
        if why:
            raise _zip_problem(f"the .zip member {info.orig_filename!r} {why}")
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise _zip_problem(
                f"the .zip member {info.filename!r} is encrypted; upload it unencrypted"
            )
        if info.compress_type not in _ZIP_METHODS:
            raise _zip_problem(
                f"the .zip member {info.filename!r} uses compression method "
                f"{info.compress_type}, which cannot be read; use one of "
                f"{', '.join(sorted(_ZIP_METHODS.values()))}"
            )
        if info.filename.lower().endswith(_ARCHIVE_SUFFIXES):
            raise _zip_problem(
                f"the .zip holds another archive ({info.filename!r}); archives inside "
                "archives are not read: put the .csv in the .zip itself"
            )
    members = [
        i
        for i in infos
        if not i.is_dir()
        and i.filename.lower().endswith(".csv")
        and not i.filename.startswith("__MACOSX/")
    ]
    if len(members) != 1:
        found = ", ".join(i.filename for i in members) or "none"
        raise _zip_problem(f"a .zip must hold exactly one .csv file (found: {found})")
    return members[0]


def _unpack(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes:
    """The member's bytes, never more than `max_bytes` of them in memory."""
    blocks: list[bytes] = []
    size = 0
    with archive.open(info) as member:
        while block := member.read(1 << 20):
            if not blocks and block.startswith(_ARCHIVE_MAGIC):
                raise _zip_problem(
                    f"the .zip member {info.filename!r} is itself an archive; "
                    "archives inside archives are not read"
                )
            size += len(block)
            if size > max_bytes:
                raise DatasetTooLarge(
                    [
                        Problem(
                            1,
                            f"the .zip member {info.filename!r} expands past the limit of "
                            f"{max_bytes} bytes (its header declared {info.file_size})",
                        )
                    ]
                )
            blocks.append(block)
    return b"".join(blocks)


def _read_source(path: Path, name: str, max_unpacked_bytes: int) -> tuple[str, str]:
    """The file's text and the name to detect its format by; a .zip (by `name` or by
    content) must hold exactly one .csv, and is read within the bounds above."""
    if Path(name).suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                info = _check_archive(archive, max_unpacked_bytes)
                return _decode(_unpack(archive, info, max_unpacked_bytes)), info.filename
        # What a corrupt archive raises while its directory or a member is read: a bad
        # header or CRC, a truncated stream, a broken compressed stream.
        except (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError) as err:
            raise _zip_problem(f"not a readable zip archive: {err}") from None
        except (NotImplementedError, RuntimeError) as err:  # what zipfile cannot do
            raise _zip_problem(f"the zip archive cannot be read: {err}") from None
    return _decode(path.read_bytes()), name


def detect_format(name: str, text: str) -> str:
    """Pick the format from the extension, else from the content."""
    suffix = Path(name).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if first.startswith(("{", "[")):
        return "jsonl"
    header = [c.strip().lower() for c in first.split(",")]
    if "text" in header and "labels" in header:
        return "csv"
    if len(first.split()) >= 2:
        return "conll"
    raise DatasetError(
        [
            Problem(
                1,
                "cannot tell the format from the name or the content; use .csv (text,labels), "
                ".txt/.conll (token and tag columns) or .jsonl (text and entities), or --format",
            )
        ]
    )


# ---------------------------------------------------------------- tags


def _check_tags(
    tokens: Sequence[str], tags: Sequence[str], line: int, token_lines: Sequence[int] | None = None
) -> list[Problem]:
    problems = []
    for i, (tok, tag) in enumerate(zip(tokens, tags, strict=True)):
        why = tag_error(tag)
        if why:
            where = token_lines[i] if token_lines else line
            problems.append(Problem(where, f"token {i + 1} {tok!r}: {why}"))
    return problems


# ---------------------------------------------------------------- readers


def _blank(ch: str) -> bool:
    """Whitespace or an invisible format character (zero-width space, BOM, bidi mark)."""
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def _lines(text: str) -> list[str]:
    """The file's physical lines, numbered as editors (and `_decode`) number them.

    Not `str.splitlines`: that also breaks at U+2028, U+2029, U+0085, form feeds and other
    separators, which JSON allows raw inside strings and which would shift every line
    number after them.
    """
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


# Each yields (sentence, problems) per record; a record with problems has no sentence.

Record = tuple[Sentence | None, list[Problem]]


def _read_csv(text: str) -> Iterator[Record]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    columns = [c.strip().lower() for c in header]
    if "text" not in columns or "labels" not in columns:
        yield (
            None,
            [
                Problem(
                    1,
                    f"the CSV header must name the columns text and labels "
                    f"(found: {','.join(header)})",
                )
            ],
        )
        return
    ti, li = columns.index("text"), columns.index("labels")
    start_line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield None, [Problem(start_line, f"unreadable CSV row: {err}")]
            return
        line, start_line = start_line, reader.line_num + 1
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(ti, li):
            yield (
                None,
                [
                    Problem(
                        line, f"expected the columns {','.join(header)}, found {len(row)} value(s)"
                    )
                ],
            )
            continue
        tokens, tags = row[ti].split(), row[li].split()
        if len(tokens) != len(tags):
            yield None, [Problem(line, f"{len(tokens)} tokens but {len(tags)} labels")]
            continue
        problems = _check_tags(tokens, tags, line)
        yield (None if problems else Sentence.from_tokens(tokens, tags, line)), problems


def _read_conll(text: str) -> Iterator[Record]:
    """Sentences, each linked to its neighbours in the same document: a `-DOCSTART-` line
    starts a new document (a file without one is one document)."""
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    problems: list[Problem] = []
    previous: Sentence | None = None

    def flush() -> Record | None:
        nonlocal previous
        if not tokens and not problems:
            return None
        record: Record
        if problems:
            record = (None, list(problems))
        else:
            sentence = Sentence.from_tokens(tokens, tags, lines[0])
            if previous is not None:
                sentence.before, previous.after = previous, sentence
            previous = sentence
            record = (sentence, [])
        for part in (tokens, tags, lines, problems):
            part.clear()
        return record

    for number, raw in enumerate(_lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith("-DOCSTART-"):
            record = flush()
            if record:
                yield record
            if line:
                previous = None  # a new document: no context across the boundary
            continue
        columns = line.split()
        if len(columns) < 2:
            problems.append(
                Problem(
                    number,
                    f"expected a token and a tag separated by a space or tab, found {line!r}",
                )
            )
            continue
        tok, tag = columns[0], columns[-1]
        why = tag_error(tag)
        if why:
            problems.append(Problem(number, f"token {tok!r}: {why}"))
        tokens.append(tok)
        tags.append(tag)
        lines.append(number)
    record = flush()
    if record:
        yield record


def _entity_parts(entity: object) -> tuple[object, object, object]:
    if isinstance(entity, dict):
        return entity.get("start"), entity.get("end"), entity.get("label")
    if isinstance(entity, list | tuple) and len(entity) == 3:
        return entity[0], entity[1], entity[2]
    return None, None, None


def _jsonl_record(obj: object, line: int) -> Record:
    if not isinstance(obj, dict):
        return None, [Problem(line, 'expected a JSON object {"text": ..., "entities": [...]}')]
    text = obj.get("text")
    if not isinstance(text, str):
        return None, [Problem(line, 'missing "text" (a string)')]
    raw = obj.get("entities", obj.get("label", obj.get("spans", [])))
    if not isinstance(raw, list):
        return None, [Problem(line, '"entities" must be a list of {start, end, label}')]
    problems: list[Problem] = []
    spans: list[tuple[int, int, str]] = []
    for n, entity in enumerate(raw, start=1):
        start, end, label = _entity_parts(entity)
        if (
            not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str))
            or isinstance(start, bool)
            or isinstance(end, bool)
        ):  # JSON true is no offset
            problems.append(
                Problem(
                    line,
                    f'entity {n}: expected {{"start": int, "end": int, '
                    f'"label": str}} or [start, end, label], got {entity!r}',
                )
            )
            continue
        if not label or any(c.isspace() for c in label) or label[:2] in ("B-", "I-"):
            problems.append(
                Problem(
                    line,
                    f"entity {n}: label {label!r} must be a bare type "
                    f"such as PER (no spaces, no B-/I- prefix)",
                )
            )
            continue
        if not 0 <= start < end <= len(text):
            problems.append(
                Problem(
                    line,
                    f"entity {n} [{start}, {end}) {label}: outside the text "
                    f"(length {len(text)}) or empty",
                )
            )
            continue
        # Whitespace (and invisible format characters such as a zero-width space) at a
        # span's edge is an annotation-tool habit, not meaning: trim it.
        given = f"[{start}, {end})"
        while start < end and _blank(text[start]):
            start += 1
        while end > start and _blank(text[end - 1]):
            end -= 1
        if start == end:
            why = "only whitespace or invisible characters"
            problems.append(Problem(line, f"entity {n} {given} {label}: {why}"))
            continue
        for edge, side in ((start, "starts"), (end, "ends")):
            if 0 < edge < len(text) and is_word_char(text[edge - 1]) and is_word_char(text[edge]):
                problems.append(
                    Problem(
                        line,
                        f"entity {n} [{start}, {end}) {label} "
                        f"{text[start:end]!r} {side} inside a word",
                    )
                )
                break
        else:
            spans.append((start, end, label))
    spans.sort()
    for (s1, e1, l1), (s2, e2, l2) in itertools.pairwise(spans):
        if s2 < e1:
            problems.append(
                Problem(
                    line,
                    f"entities overlap: [{s1}, {e1}) {l1} "
                    f"{text[s1:e1]!r} and [{s2}, {e2}) {l2} {text[s2:e2]!r}",
                )
            )
    if problems:
        return None, problems
    cuts = {p for s, e, _ in spans for p in (s, e)}
    words = split_at(split_words(text), cuts)
    word_spans = []
    for s, e, label in spans:
        # The words cut at the span's edges; none when the span holds no word character.
        inside = [i for i, (a, b) in enumerate(words) if s <= a and b <= e]
        if not inside:
            problems.append(Problem(line, f"entity [{s}, {e}) {label} {text[s:e]!r} holds no word"))
            continue
        word_spans.append((inside[0], inside[-1] + 1, label))
    if problems:
        return None, problems
    return Sentence(text, words, spans_to_tags(len(words), word_spans), line), []


def _read_jsonl(text: str) -> Iterator[Record]:
    stripped = text.lstrip()
    if stripped.startswith("["):  # a whole JSON array is accepted too
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            yield None, [Problem(err.lineno, f"invalid JSON: {err.msg}")]
            return
        except (ValueError, RecursionError) as err:
            yield None, [Problem(1, unreadable_json(err))]
            return
        if isinstance(items, list):
            for obj in items:
                yield _jsonl_record(obj, 1)
            return
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            yield None, [Problem(number, f"invalid JSON at column {err.colno}: {err.msg}")]
            continue
        except (ValueError, RecursionError) as err:
            yield None, [Problem(number, unreadable_json(err))]
            continue
        yield _jsonl_record(obj, number)


READERS = {"csv": _read_csv, "conll": _read_conll, "jsonl": _read_jsonl}


# ---------------------------------------------------------------- entry points


def parse_dataset(text: str, fmt: str, name: str = "", *, skip_invalid: bool = False) -> Dataset:
    """Parse already-decoded `text` in format `fmt` (one of FORMATS)."""
    if fmt not in READERS:
        raise DatasetError([Problem(1, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")])
    if not text.strip():
        raise DatasetError([Problem(1, "the file is empty")])
    sentences: list[Sentence] = []
    problems: list[Problem] = []
    for sentence, found in READERS[fmt](text):
        problems.extend(found)
        if sentence is not None and sentence.words:
            sentences.append(sentence)
    structural = not sentences and not problems
    if structural:
        raise DatasetError([Problem(1, "no sentences found")])
    dataset = Dataset(sentences, fmt, name)
    if problems:
        if not skip_invalid or not sentences:
            raise DatasetError(problems, hint=None if not sentences else SKIP_HINT)
        dataset.skipped = sorted(problems)
        bad_lines = len({p.line for p in problems})
        dataset.warnings.append(
            f"left out {bad_lines} invalid record(s) (--skip-invalid); first: {problems[0]}"
        )
    converted = 0
    for s in sentences:
        s.tags, n = iob1_to_iob2(s.tags)
        converted += n
    if converted:
        dataset.warnings.append(
            f"converted {converted} tag(s) from IOB1 to IOB2 "
            "(an I- tag starting an entity became B-)"
        )
    return dataset


def read_dataset(
    path: str | Path,
    *,
    format: str = "auto",
    filename: str | None = None,
    skip_invalid: bool = False,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
) -> Dataset:
    """Read and validate a dataset file. Raises `DatasetError` listing every problem by line.

    `filename` is the name to detect the format by when `path` is a temporary file
    (an upload). With `skip_invalid`, records with problems are left out and listed in
    `Dataset.skipped` instead; file-level problems still raise. A .zip may expand to at
    most `max_unpacked_bytes` (`DatasetTooLarge` past it).
    """
    path = Path(path)
    name = filename or path.name
    if not path.is_file():
        raise DatasetError([Problem(0, f"no such file: {path}")])
    text, member = _read_source(path, name, max_unpacked_bytes)
    if not text.strip():  # before detection, which has nothing to go by in an empty file
        raise DatasetError([Problem(1, "the file is empty")])
    fmt = detect_format(member, text) if format == "auto" else format
    return parse_dataset(text, fmt, name, skip_invalid=skip_invalid)


def split_dataset(
    dataset: Dataset, seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> tuple[Dataset, Dataset, Dataset]:
    """Seeded shuffle, then train/validation/test parts by `fractions`."""
    order = list(range(len(dataset)))
    random.Random(seed).shuffle(order)
    n = len(order)
    a = round(n * fractions[0])
    b = a + round(n * fractions[1])
    parts = [order[:a], order[a:b], order[b:]]
    names = ("[train]", "[validation]", "[test]")
    train, validation, test = (
        dataset.subset([dataset.sentences[i] for i in part], suffix)
        for part, suffix in zip(parts, names, strict=True)
    )
    return train, validation, test
