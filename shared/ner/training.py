"""Fine-tuning a token-classification encoder.

AdamW with warm-up and linear decay, dynamic padding (transformers'
`DataCollatorForTokenClassification`), length-grouped batches (transformers'
`LengthGroupedSampler`), gradient clipping, early stopping on validation entity
F1, seeded, optionally keeping a moving average of the weights (`averaging.py`).
`train_steps` is a generator that yields a `Progress` after each
step and evaluation, in the manner of spaCy's `train_while_improving`; `train`
drives it, reports through a callback, and saves a plain Hugging Face model
directory plus `metrics.json` and `training.json`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
    set_seed,
)
from transformers.trainer_pt_utils import LengthGroupedSampler

from . import crf
from .averaging import WeightAverage
from .basemodel import resolve_base_model
from .casing import enable_casing, token_type_ids, uses_casing
from .checkpoint import (
    is_checkpoint,
    load_checkpoint,
    optimizer_state,
    optimizer_tensors,
    prefixed,
    save_checkpoint,
)
from .config import TrainConfig
from .context import (
    CONTEXT_MODES,
    NO_CONTEXT,
    document_contexts,
    document_runs,
    subtoken_counter,
)
from .decoding import DECODINGS, Decoder
from .encoding import IGNORE, WindowEncoder
from .evaluation import evaluate_chunks
from .formats import Dataset
from .inference import Predictor, window_length
from .labels import continuation_ids, label_list
from .onnx_export import export_for_serving
from .runtime import autocast, pick_device, use_bf16
from .splits import plan_splits

EVAL_CHUNK = 256  # sentences evaluated between two progress reports


class TrainingCancelled(Exception):
    """Raised by a progress callback to stop training; the output directory is removed."""


@dataclass
class Progress:
    stage: (
        str  # preparing | training | evaluating | final fit | testing | saving | exporting | done
    )
    fraction: float  # 0–1 of the whole run
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_seconds: float | None = None
    seconds: float = 0.0
    metrics: dict[str, Any] | None = None


@dataclass
class TrainResult:
    model_dir: Path
    metrics: dict[str, Any]  # on the test split
    validation_metrics: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    # Which data `metrics` were computed on: "test", "validation" or "split" (plan_splits).
    test_source: str = "split"


Callback = Callable[[Progress], None]


def _load(base: str, labels: list[str]) -> tuple[Any, Any]:
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForTokenClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,  # a base that already has a (different) NER head
    )
    return tokenizer, model


_LAYER_RE = re.compile(r"\.layers?\.(\d+)\.")


def _depth(name: str, n_layers: int) -> int:
    """0 for the embeddings, i + 1 for encoder layer i, n_layers + 1 for what sits on top."""
    found = _LAYER_RE.search(name)
    if found:
        return int(found.group(1)) + 1
    return 0 if "embeddings" in name else n_layers + 1


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norms; with `layer_decay` < 1, lower layers
    (general features the pre-training learnt) move more slowly than upper ones."""
    names = [n for n, _ in model.named_parameters()]
    n_layers = max((int(m.group(1)) + 1 for n in names if (m := _LAYER_RE.search(n))), default=0)
    groups: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    crf_scores: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if name.startswith(crf.ATTRIBUTE + "."):
            crf_scores.append(param)
            continue
        decays = not (param.ndim < 2 or "LayerNorm" in name)
        groups.setdefault((_depth(name, n_layers), decays), []).append(param)
    param_groups = [
        {
            "params": params,
            "weight_decay": config.weight_decay if decays else 0.0,
            "lr": config.learning_rate * config.layer_decay ** (n_layers + 1 - depth),
        }
        for (depth, decays), params in sorted(groups.items())
    ]
    if crf_scores:
        lr = max(config.learning_rate, crf.LEARNING_RATE)
        param_groups.append({"params": crf_scores, "weight_decay": 0.0, "lr": lr})
    # The fused kernel (CPU and CUDA) is several times faster than the per-tensor loop.
    return torch.optim.AdamW(param_groups, lr=config.learning_rate, fused=True)


def packed_context(config: TrainConfig) -> bool:
    return bool(config.context_length) and config.context_mode == "packed"


def prepare_model(model: Any, config: TrainConfig) -> None:
    """Switch on the accuracy features and record them in the model's config.json, where
    `Predictor` reads them: a saved model predicts the way it was trained."""
    if config.decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}, not {config.decoding!r}")
    model.config.ner_casing = None
    if config.casing:
        enable_casing(model)  # sets ner_casing, unless the encoder has no token types
    model.config.ner_decoding = config.decoding
    if config.decoding == "crf":
        crf.attach(model)
    if config.context_length and not 16 <= config.context_length <= 512:
        raise ValueError(f"context_length must be 0 (off) or 16-512, not {config.context_length}")
    if config.layer_decay <= 0 or config.layer_decay > 1:
        raise ValueError(f"layer_decay must be in (0, 1], not {config.layer_decay}")
    if config.context_mode not in CONTEXT_MODES:
        modes = ", ".join(CONTEXT_MODES)
        raise ValueError(f"context_mode must be one of {modes}, not {config.context_mode!r}")
    model.config.ner_context_length = config.context_length
    model.config.ner_context_mode = config.context_mode


def _features(
    encoder: WindowEncoder,
    tokenizer: Any,
    data: Dataset,
    labels: list[str],
    config: TrainConfig,
    casing: bool,
) -> list[dict[str, list[int]]]:
    """Training windows: each sentence, with its document context when asked for (labels
    on the sentence only), its word shapes as token types when casing is on."""
    label_index = {label: i for i, label in enumerate(labels)}
    sentences = data.sentences
    if config.context_length and config.context_mode == "packed":
        return _packed_features(tokenizer, data, label_index, labels, config, casing)
    if config.context_length:
        content = min(config.context_length, encoder.content + encoder.n_special)
        contexts = document_contexts(
            sentences, subtoken_counter(tokenizer), content - encoder.n_special
        )
    else:
        contexts = [NO_CONTEXT] * len(sentences)
    words = [c.left + s.tokens + c.right for s, c in zip(sentences, contexts, strict=True)]
    tags = [
        [IGNORE] * len(c.left) + [label_index.get(t, 0) for t in s.tags] + [IGNORE] * len(c.right)
        for s, c in zip(sentences, contexts, strict=True)
    ]
    return _window_features(encoder, words, tags, labels, casing, config.decoding == "crf")


def packed_encoder(tokenizer: Any, context_length: int) -> WindowEncoder:
    """Windows of `context_length` sub-tokens overlapping by a quarter: a word owned near
    a window's edge still has an eighth of a window of context on that side."""
    probe = WindowEncoder(tokenizer, context_length, 0)
    return WindowEncoder(tokenizer, context_length, probe.content // 4)


def _packed_features(
    tokenizer: Any,
    data: Dataset,
    label_index: dict[str, int],
    labels: list[str],
    config: TrainConfig,
    casing: bool,
) -> list[dict[str, list[int]]]:
    """Training windows cut from whole documents, every word labelled once."""
    sentences = data.sentences
    words: list[list[str]] = []
    tags: list[list[int]] = []
    for run in document_runs(sentences):
        words.append([t for i in run for t in sentences[i].tokens])
        tags.append([label_index.get(t, 0) for i in run for t in sentences[i].tags])
    encoder = packed_encoder(tokenizer, config.context_length)
    return _window_features(encoder, words, tags, labels, casing, config.decoding == "crf")


def _window_features(
    encoder: WindowEncoder,
    words: list[list[str]],
    tags: list[list[int]],
    labels: list[str],
    casing: bool,
    word_starts: bool = False,
) -> list[dict[str, list[int]]]:
    """The collator's input for each window of the encoded texts (with word shapes as token
    types when casing is on, and where the CRF reads each word when `word_starts`)."""
    features = []
    for w in encoder.encode(words, tags, continuation_ids(labels)):
        feature = {
            "input_ids": w.input_ids,
            "attention_mask": [1] * len(w.input_ids),
            "labels": w.labels or [],
        }
        if casing:
            feature["token_type_ids"] = token_type_ids(words[w.doc], w.words)
        if word_starts:
            feature[crf.WORD_STARTS] = crf.word_starts(len(w.input_ids), w.owned)
        features.append(feature)
    return features


def train_steps(
    model: Any,
    tokenizer: Any,
    train_data: Dataset,
    validation: Dataset | None,
    labels: list[str],
    config: TrainConfig,
    test: Dataset | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    checkpoint: Callable[[dict[str, torch.Tensor], dict[str, Any]], None] | None = None,
    checkpoint_seconds: float = 300.0,
    resume: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None,
) -> Iterator[Progress]:
    """Train in place, yielding progress; leaves the best-on-validation weights in `model`
    (with no `validation`: every epoch trained, the last one's weights, as a final fit).

    `checkpoint(tensors, meta)` is handed the whole training state at the end of every epoch
    and every `checkpoint_seconds` within one; `resume` (a state it was handed) carries on
    from there: same weights, optimizer, schedule, position in the epoch's batches and
    early-stopping record.

    Yields a `Progress` after every step and every evaluated chunk; the one whose stage
    is "evaluated" carries the epoch's validation metrics, and "tested" (the last, when
    `test` is given) the test metrics of the kept weights."""
    torch_device = pick_device(device)
    bf16 = use_bf16(torch_device, precision)
    prepare_model(model, config)
    model.to(torch_device)
    word_crf = getattr(model, crf.ATTRIBUTE, None)  # with decoding "crf"
    max_length = config.max_length or window_length(model, tokenizer)
    encoder = WindowEncoder(tokenizer, max_length, config.stride)
    features = _features(encoder, tokenizer, train_data, labels, config, uses_casing(model))
    generator = torch.Generator().manual_seed(config.seed)
    sampler = LengthGroupedSampler(
        config.batch_size, lengths=[len(f["input_ids"]) for f in features], generator=generator
    )
    loader: DataLoader[Any] = DataLoader(
        features,  # type: ignore[arg-type]
        batch_size=config.batch_size,
        sampler=sampler,
        collate_fn=crf.Collator(tokenizer, pad_to_multiple_of=8),
    )
    steps_per_epoch = len(loader)
    total = steps_per_epoch * config.epochs
    # Progress counts work units: a training step is one; evaluating a chunk of
    # sentences costs about a third of a training step per `batch_size` sentences
    # (forward only). The run's last 1% is left for saving.
    chunk = EVAL_CHUNK

    def eval_units(n_sentences: int) -> float:
        return n_sentences / (config.batch_size * 3)

    grand_total = total + (eval_units(len(validation)) * config.epochs if validation else 0)
    grand_total += eval_units(len(test)) if test is not None else 0
    optimizer = _optimizer(model, config)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, math.ceil(total * config.warmup_ratio), total
    )
    predictor = Predictor(
        model,
        tokenizer,
        device=str(torch_device),
        precision=precision,
        # A packed-context model predicts in the windows it was trained in (as it will
        # when loaded: `Predictor` reads the length from config.json).
        max_length=config.context_length if packed_context(config) else max_length,
        stride=config.stride,
    )
    # The weights evaluated and kept: their moving average over the steps, or (with
    # ema_decay 0) the last step's.
    average = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    kept = average.applied if average is not None else lambda _: contextlib.nullcontext()
    best_f1, best_state, stale = -1.0, None, 0
    done = 0.0
    step = 0
    first_epoch, skip_batches = 1, 0
    if resume is not None:
        tensors, meta = resume
        model.load_state_dict(prefixed(tensors, "model."))
        optimizer.load_state_dict(optimizer_state(tensors, meta["optimizer"]))
        scheduler.load_state_dict(meta["scheduler"])
        best_state = prefixed(tensors, "best.") or None
        if average is not None and (averaged := prefixed(tensors, "ema.")):
            # (A checkpoint written without the average starts it from here.)
            average.load_state_dict(averaged)
        best_f1, stale, done, step = meta["best_f1"], meta["stale"], meta["done"], meta["step"]
        first_epoch, skip_batches = meta["epoch"], meta["batches_done"]
        generator.set_state(tensors["rng.sampler"])
        resume_rng = tensors["rng.torch"]
        if skip_batches == 0:
            # Saved between epochs: the next epoch's loader draws its seed from this state.
            torch.set_rng_state(resume_rng)
    start = time.perf_counter()
    last_checkpoint = time.monotonic()

    def save(epoch: int, batches_done: int, sampler_rng: torch.Tensor) -> None:
        nonlocal last_checkpoint
        if checkpoint is None:
            return
        opt_tensors, opt_meta = optimizer_tensors(optimizer.state_dict())
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update({f"best.{k}": v for k, v in (best_state or {}).items()})
        if average is not None:
            tensors.update({f"ema.{k}": v for k, v in average.state_dict().items()})
        tensors.update(opt_tensors)
        tensors["rng.sampler"] = sampler_rng
        tensors["rng.torch"] = torch.get_rng_state()
        meta = {
            "epoch": epoch,
            "batches_done": batches_done,
            "step": step,
            "done": done,
            "best_f1": best_f1,
            "stale": stale,
            "optimizer": opt_meta,
            "scheduler": scheduler.state_dict(),
        }
        checkpoint(tensors, meta)
        last_checkpoint = time.monotonic()

    def progress(stage: str, epoch: int, **extra: Any) -> Progress:
        elapsed = time.perf_counter() - start
        fraction = min(done / grand_total, 1.0) * 0.99
        eta = elapsed / fraction * (1 - fraction) if fraction > 0.01 else None
        return Progress(
            stage,
            fraction,
            epoch,
            config.epochs,
            step,
            total,
            eta_seconds=eta,
            seconds=elapsed,
            **extra,
        )

    def evaluation(stage: str, dataset: Dataset, epoch: int) -> Iterator[Progress]:
        nonlocal done
        if config.decoding == "crf":  # decode with the scores as they are now
            crf.record(model)
            predictor.decoder = Decoder(predictor.id2label, "crf", model.config.ner_crf)
        remaining = len(dataset)
        # The test run also keeps the error analysis (evaluation.json, see `train`).
        for result in evaluate_chunks(predictor, dataset, chunk, analysis=stage == "testing"):
            if result is None:
                done += eval_units(min(chunk, remaining))
                remaining -= chunk
                yield progress(stage, epoch)
            else:
                yield progress(stage + "-done", epoch, metrics=result)

    epoch = first_epoch - 1
    for epoch in range(first_epoch, config.epochs + 1):
        if stale >= config.patience:
            break  # resumed after the epoch that stopped the run
        model.train()
        # The sampler draws the epoch's order from `generator` when the loader starts: its
        # state here is what a checkpoint needs to find the same batches again.
        sampler_rng = generator.get_state()
        for index, batch in enumerate(loader):
            if epoch == first_epoch and index < skip_batches:
                continue  # done before the checkpoint this run resumed from
            if epoch == first_epoch and index == skip_batches > 0:
                # Saved mid-epoch, after the loader had drawn its seed: dropout goes on from
                # exactly where it was.
                torch.set_rng_state(resume_rng)
            batch = {k: v.to(torch_device) for k, v in batch.items()}
            starts = batch.pop(crf.WORD_STARTS, None)
            with autocast(torch_device, bf16):
                out = model(**batch)
                loss = out.loss
                if word_crf is not None and starts is not None:
                    loss = loss + word_crf.loss(out.logits, batch["labels"], starts)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if average is not None:
                average.update(model)
            done += 1
            step += 1
            yield progress("training", epoch, loss=loss.item())
            if checkpoint is not None and time.monotonic() - last_checkpoint >= checkpoint_seconds:
                save(epoch, index + 1, sampler_rng)
        model.eval()
        if validation is None:  # a final fit: nothing to choose, the last epoch's weights stay
            if epoch == config.epochs and average is not None:
                with kept(model):  # (the moving average, where there is one)
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            save(epoch + 1, 0, generator.get_state())
            continue
        metrics: dict[str, Any] = {}
        with kept(model):
            for p in evaluation("evaluating", validation, epoch):
                if p.metrics is not None:
                    metrics = p.metrics
                    p.stage = "evaluated"
                yield p
            # A tie keeps the later (longer-trained, more confident) weights but still
            # counts towards patience.
            stale = 0 if metrics["f1"] > best_f1 else stale + 1
            if metrics["f1"] >= best_f1:
                best_f1 = metrics["f1"]
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        save(epoch + 1, 0, generator.get_state())
        if stale >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    if test is not None:
        # Early stopping may end the run before its planned epochs: skip their share.
        done = max(done, grand_total - eval_units(len(test)))
        for p in evaluation("testing", test, epoch):
            if p.metrics is not None:
                p.stage = "tested"
            yield p


class _Runs:
    """What `train` keeps of its runs as they go: one progress bar and one callback over
    the run that chooses the epoch count (the first `share` of the bar) and the final fit
    (the rest), the validation history, and the test metrics with their error analysis."""

    def __init__(
        self, report: Callable[[Progress], None], bar: Any, share: float, final_fit: bool
    ) -> None:
        self.report, self.bar, self.share, self.final_fit = report, bar, share, final_fit
        self.history: list[dict[str, Any]] = []
        self.metrics: dict[str, Any] = {}
        self.analysis: dict[str, Any] | None = None
        self._last_report, self._last_stage = 0.0, ""

    def follow(self, steps: Iterator[Progress], *, final_fit: bool = False) -> None:
        for p in steps:
            self._place(p, final_fit)
            if p.loss is not None:
                what = "final fit, epoch" if final_fit else "epoch"
                self.bar.set_postfix_str(
                    f"{what} {p.epoch}/{p.epochs} loss {p.loss:.3f}", refresh=False
                )
            if p.stage == "evaluated" and p.metrics is not None:
                self.history.append({"epoch": p.epoch, "step": p.step, **p.metrics})
                self.bar.write(
                    f"epoch {p.epoch}: validation f1 {p.metrics['f1']:.4f}", file=sys.stderr
                )
            if p.stage == "tested" and p.metrics is not None:
                # Popped before the callback sees it: the job row keeps only the scores.
                self.analysis = p.metrics.pop("analysis", None)
                self.metrics = p.metrics
            self.bar.refresh()
            now = time.perf_counter()
            # Steps are reported once a second, but always the first of a run.
            a_step = p.stage in ("training", "final fit")
            if not a_step or now - self._last_report >= 1.0 or p.stage != self._last_stage:
                self._last_report, self._last_stage = now, p.stage
                self.report(p)

    def _place(self, p: Progress, final_fit: bool) -> None:
        """A run's own 0–0.99 progress as part of the whole."""
        if not final_fit:
            p.fraction *= self.share / 0.99
            if p.eta_seconds is not None and self.final_fit:
                # The final fit is still to come: about as long again.
                p.eta_seconds += (p.seconds + p.eta_seconds) * (0.99 - self.share) / self.share
        else:
            p.fraction = self.share + p.fraction * (0.99 - self.share) / 0.99
            if p.stage == "training":
                p.stage = "final fit"
        self.bar.n = round(p.fraction * 100, 1)


def train(
    train_data: Dataset,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    validation: Dataset | None = None,
    test: Dataset | None = None,
    callback: Callback | None = None,
    progress_bar: bool = False,
    device: str = "auto",
    precision: str = "auto",
    checkpoint_dir: str | Path | None = None,
    checkpoint_seconds: float = 300.0,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> TrainResult:
    """Fine-tune on `train_data` and save the model to `out_dir`.

    Which data is learnt from, stopped on and reported on is `plan_splits`'s decision.
    `device` (auto, cpu, cuda…) and `precision` (auto, fp32, bf16) say where it runs.
    A `callback` receives a `Progress` after every step; raising `TrainingCancelled`
    from it stops training and removes what was written.

    With `checkpoint_dir`, the training state is written there at the end of every epoch
    and every `checkpoint_seconds` (then `on_checkpoint(checkpoint_dir)` is called, e.g. to
    upload it), and a checkpoint already there is resumed from: same data, config and seed
    give the run that was interrupted.
    """
    config = config or TrainConfig()
    began = time.perf_counter()
    set_seed(config.seed)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    splits = plan_splits(train_data, validation, test, config.seed)
    train_data, validation, test = splits.train, splits.validation, splits.test
    if config.max_sentences:
        train_data = train_data.subset(train_data.sentences[: config.max_sentences], "")
    if not train_data.sentences:
        raise ValueError("no training sentences")
    types = train_data.entity_types
    if not types:
        raise ValueError("the training data has no entities: nothing to learn")
    labels = label_list(types)
    base = resolve_base_model(config.base_model)

    def report(p: Progress) -> None:
        if callback:
            callback(p)

    partial = out.with_name(out.name + ".partial")
    bar = tqdm(
        total=100,
        unit="%",
        file=sys.stderr,
        disable=not progress_bar,
        bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}] {postfix}",
    )
    # A final fit: once validation has chosen the epoch count, the model is trained again
    # from the base on training + validation data for that many epochs (the validation
    # part is 1/9 more data), when the validation part was split off the training data. Not
    # in a quick run (`max_sentences`): its training data would outgrow the limit asked for.
    refit_data = None
    if config.final_fit and splits.validation_carved and not config.max_sentences:
        refit_data = train_data.subset(
            train_data.sentences + validation.sentences, "+" + validation.name
        )
    # Share of the progress bar the choosing run takes (a final fit's epochs guessed as all).
    share = (
        0.99
        if refit_data is None
        else 0.99 * len(train_data) / (2 * len(train_data) + len(validation))
    )
    runs = _Runs(report, bar, share, refit_data is not None)
    try:
        report(Progress("preparing", 0.0))
        resume = None
        checkpoint = None
        final_epochs: int | None = None  # set once a final fit has begun
        if checkpoint_dir is not None:
            folder = Path(checkpoint_dir)
            if is_checkpoint(folder):
                resume = load_checkpoint(folder)
                runs.history = list(resume[1].get("history", []))
                final_epochs = resume[1].get("final_fit_epochs")
                report(Progress("resuming", 0.0, epoch=resume[1]["epoch"]))

            def checkpoint(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
                extra = {"final_fit_epochs": final_epochs} if final_epochs else {}
                save_checkpoint(folder, tensors, {**meta, "history": runs.history, **extra})
                if on_checkpoint is not None:
                    on_checkpoint(folder)

        # Both runs go to the same device and write the same checkpoint folder.
        steps = functools.partial(
            train_steps,
            device=device,
            precision=precision,
            checkpoint=checkpoint,
            checkpoint_seconds=checkpoint_seconds,
        )
        if final_epochs is None:  # not resuming a final fit: the run that chooses
            tokenizer, model = _load(base, labels)
            tested = None if refit_data is not None else test
            runs.follow(
                steps(
                    model, tokenizer, train_data, validation, labels, config, tested, resume=resume
                )
            )
            resume = None
        if refit_data is not None:
            if final_epochs is None:
                # The epoch whose weights the choosing run kept (a tie: the later one).
                final_epochs = max(runs.history, key=lambda h: (h["f1"], h["epoch"]))["epoch"]
                bar.write(
                    f"final fit: {final_epochs} epoch{'s' * (final_epochs != 1)} on training"
                    " + validation data",
                    file=sys.stderr,
                )
            # The same start as the choosing run: seeds, then a fresh model from the base.
            set_seed(config.seed)
            labels = label_list(refit_data.entity_types)
            tokenizer, model = _load(base, labels)
            refit_config = config.model_copy(update={"epochs": final_epochs})
            runs.follow(
                steps(
                    model, tokenizer, refit_data, None, labels, refit_config, test, resume=resume
                ),
                final_fit=True,
            )
        history, metrics, analysis = runs.history, runs.metrics, runs.analysis
        validation_metrics = max(history, key=lambda h: h["f1"]) if history else None
        report(Progress("saving", 0.99, seconds=time.perf_counter() - began))
        if partial.exists():
            shutil.rmtree(partial)
        crf.detach(model)  # its scores go to config.json, not among the weights
        model.save_pretrained(partial)  # safetensors by default; no pickle
        tokenizer.save_pretrained(partial)
        (partial / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if analysis is not None:  # the errors on the scored data, `analysis.Analysis`
            (partial / "evaluation.json").write_text(json.dumps(analysis) + "\n")
        serving = None
        if config.onnx:
            report(Progress("exporting", 0.99, seconds=time.perf_counter() - began))
            serving = export_for_serving(partial, validation.sentences)
        info = {
            "arguments": config.model_dump(),
            "runtime": {"device": device, "precision": precision},
            "test_source": splits.test_source,
            "base_model": base,
            "labels": labels,
            "data": {
                "train": {"name": train_data.name, **train_data.stats()},
                "validation": {"name": validation.name, **validation.stats()},
                "test": {"name": test.name, **test.stats()},
            },
            "history": history,
            "validation_metrics": validation_metrics,
            # Trained again on training + validation data for this many epochs.
            "final_fit": {"epochs": final_epochs, "data": refit_data.stats()}
            if refit_data is not None
            else None,
            "serving": serving,
            "seconds": round(time.perf_counter() - began, 1),
            "torch": torch.__version__,
        }
        (partial / "training.json").write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        bar.close()
    try:
        report(Progress("done", 1.0, seconds=time.perf_counter() - began, metrics=metrics))
    except TrainingCancelled:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return TrainResult(out, metrics, validation_metrics, history, splits.test_source)
