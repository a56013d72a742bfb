"""The `ner` command line (CONTRACT §2): the top of the import graph, the one place that
knows about the API and the worker together.

`train`, `evaluate` and `predict` use the NER core alone. `serve`, `api` and
`worker` start the service parts; they are imported only when asked for, so the
core commands never load the web or queue stack.

Exit status: 0 success, 2 bad input (the `line N: message` list on stderr),
1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cli.params import BadParameters, add_model_options, model_from_args
from shared.errors import Conflict, InvalidInput, NotFound
from shared.ner import DatasetError, parse_documents, read_dataset  # light: no torch
from shared.ner.config import TrainConfig

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """A mistake in what the user gave us: printed without a traceback, exit 2."""


def _workers(text: str) -> int:
    # api.server's check, imported only when --workers is given: `ner api` loads it next.
    from api.server import workers_argument

    return workers_argument(text)


def _quiet_transformers() -> None:
    """No info logs or progress bars from transformers. Through its environment variables,
    read when it is first imported: importing it here would cost `ner predict` a second
    for a model served by ONNX Runtime, which never imports it."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already imported (a caller in the same process)
        from transformers.utils import logging

        logging.set_verbosity_error()
        logging.disable_progress_bar()


def _read(path: str | None, args: argparse.Namespace) -> Any:
    if path is None:
        return None
    if not Path(path).is_file():
        raise BadInput(f"{path}: no such file")
    return read_dataset(path, format=args.format, skip_invalid=args.skip_invalid)


def _model_dir(path: str) -> Path:
    model = Path(path)
    if not (model / "config.json").is_file():
        raise BadInput(
            f"{path}: not a model directory (no config.json); train one with `ner train`"
        )
    return model


def cmd_train(args: argparse.Namespace) -> int:
    from shared.ner import train  # torch loads here, for the commands that need it
    from shared.ner.basemodel import EncoderNotInstalled
    from shared.ner.onnx_model import serving_report

    try:
        config = model_from_args(TrainConfig, args)
    except BadParameters as err:
        raise BadInput(str(err)) from None

    datasets = {name: _read(getattr(args, name), args) for name in ("train", "validation", "test")}
    for name, ds in datasets.items():
        for warning in ds.warnings if ds else []:
            print(f"warning: {name}: {warning}", file=sys.stderr)
    out = Path(args.out or f"runs/model-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"{out} exists and is not empty; choose another --out")
    try:
        result = train(
            datasets["train"],
            out,
            config,
            validation=datasets["validation"],
            test=datasets["test"],
            progress_bar=not args.quiet,
            device=args.device,
            precision=args.precision,
        )
    except EncoderNotInstalled as err:  # e.g. --preset accurate without its packages
        raise BadInput(str(err)) from None
    serving = serving_report(result.model_dir)
    if serving is not None:  # stdout's last line is CONTRACT §2's, so this goes to stderr
        served = f"ONNX {serving['serve']}" if serving["serve"] else "PyTorch"
        why = f" ({serving['reason']})" if serving.get("reason") else ""
        print(f"serving on a CPU: {served}{why}; see onnx/serving.json", file=sys.stderr)
    print(json.dumps({"model_dir": str(result.model_dir), "metrics": result.metrics}))
    return 0


def _load_predictor(model: Path, args: argparse.Namespace) -> Any:
    from shared.ner import Predictor
    from shared.ner.inference import NoOnnxExport

    try:
        return Predictor.load(
            model, backend=args.backend, device=args.device, precision=args.precision
        )
    except NoOnnxExport as err:
        raise BadInput(str(err)) from None
    except (OSError, ValueError) as err:  # a damaged or incomplete model directory
        raise BadInput(f"{model}: the model could not be loaded: {err}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from shared.ner import evaluate

    model = _model_dir(args.model)
    outputs = [Path(p) for p in (args.errors, args.json) if p]
    for path in outputs:  # refused before the (slow) scoring, not after
        if not path.parent.is_dir():
            raise BadInput(f"{path}: the directory {path.parent} does not exist")
        if path.is_dir():
            raise BadInput(f"{path} is a directory; give a file name")
    dataset = _read(args.data, args)
    predictor = _load_predictor(model, args)
    result = evaluate(predictor, dataset, batch_size=args.batch_size, analysis=bool(outputs))
    analysis = result.pop("analysis", None)
    if args.json:
        Path(args.json).write_text(json.dumps(analysis, ensure_ascii=False) + "\n", "utf-8")
    if args.errors:
        from shared.ner.report import render_report

        title = f"Errors of {model.resolve().name} on {Path(args.data).name}"
        Path(args.errors).write_text(render_report(analysis, result, title), "utf-8")
    print(json.dumps(result))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a saved model to ONNX and check it on labelled data (a model saved before
    exports existed, or with `--onnx false`); the `onnx/serving.json` report on stdout."""
    from shared.ner.onnx_export import export_for_serving

    model = _model_dir(args.model)
    dataset = _read(args.data, args)
    report = export_for_serving(model, dataset.sentences)
    print(json.dumps(report))
    return 0


def _documents(texts: Sequence[str]) -> Iterator[tuple[str, str]]:
    if texts:
        yield from ((str(i), t) for i, t in enumerate(texts, start=1))
        return
    # Stdin is read in chunks so a long stream is tagged (and printed) as it comes.
    chunk: list[str] = []
    first = 1
    for line in sys.stdin:
        chunk.append(line)
        if len(chunk) >= 256:
            yield from ((d.id, d.text) for d in parse_documents(chunk, first_line=first))
            first += len(chunk)
            chunk = []
    yield from ((d.id, d.text) for d in parse_documents(chunk, first_line=first))


def cmd_predict(args: argparse.Namespace) -> int:
    from concurrent.futures import Future, ThreadPoolExecutor

    predictor = _load_predictor(_model_dir(args.model), args)
    Tagged = tuple[list[tuple[str, str]], list[Any]]

    def tag(batch: list[tuple[str, str]]) -> Tagged:
        return batch, predictor.predict([t for _, t in batch], batch_size=args.batch_size)

    def write(tagged: Tagged) -> None:
        batch, results = tagged
        for (doc_id, _), entities in zip(batch, results, strict=True):
            print(json.dumps({"id": doc_id, "entities": entities}, ensure_ascii=False))
        sys.stdout.flush()

    # Each chunk is tagged while the one before is written out and the one after is read:
    # the cores stay on the model instead of waiting for JSON in and out.
    with ThreadPoolExecutor(1, thread_name_prefix="tag") as tagger:
        pending: Future[Tagged] | None = None
        batch: list[tuple[str, str]] = []
        try:
            for doc in _documents(args.text):
                batch.append(doc)
                if len(batch) >= 256:
                    ahead = tagger.submit(tag, batch)
                    if pending is not None:
                        write(pending.result())
                    pending, batch = ahead, []
        finally:
            # What was tagged is written, also when a later line turns out to be bad.
            if pending is not None:
                write(pending.result())
        if batch:
            write(tag(batch))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from cli.serve import serve

    serve(args.host, args.port, insecure=args.insecure)
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from api.server import run_api

    run_api(args.host, args.port, insecure=args.insecure, workers=args.workers)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from cli import keys

    return int(getattr(keys, f"cmd_{args.keys_command}")(args))


def cmd_worker(args: argparse.Namespace) -> int:
    from worker.main import run_worker

    run_worker([q.strip() for q in args.queues.split(",") if q.strip()])
    return 0


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(
        prog="ner", description="Train, evaluate and serve NER models."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", default="auto", choices=["auto", "csv", "conll", "jsonl"])
        p.add_argument(
            "--skip-invalid",
            action="store_true",
            help="leave out sentences with problems (listed as a warning) instead of "
            "refusing the file",
        )

    def run_options(p: argparse.ArgumentParser, batch: int | None) -> None:
        p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
        p.add_argument(
            "--precision",
            default="auto",
            # int8 is an ONNX serving variant: for tagging, not for training.
            choices=["auto", "fp32", "bf16", *(["int8"] if batch is not None else [])],
            help="auto: the model's checked ONNX export on a CPU (int8 where it kept F1), "
            "else bf16 autocast on CUDA and on CPUs with AMX; int8: ONNX only",
        )
        if batch is not None:  # `train` takes its batch size from TrainConfig
            p.add_argument("--batch-size", type=int, default=batch)
            p.add_argument(
                "--backend",
                default="auto",
                choices=["auto", "onnx", "torch"],
                help="auto: on a CPU the model's checked ONNX export (onnx/serving.json), "
                "else PyTorch",
            )

    p = sub.add_parser("train", help="fine-tune a model")
    p.add_argument("--train", required=True, help="training data (csv, zip, conll, jsonl)")
    p.add_argument("--validation", help="validation data (early stopping)")
    p.add_argument("--test", help="test data (reported metrics)")
    p.add_argument("--out", help="output directory (default: runs/model-TIMESTAMP)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    data_options(p)
    run_options(p, None)
    add_model_options(p, TrainConfig, "training parameters (the same as POST /jobs/train's)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "export",
        help="export a saved model to ONNX for CPU serving, checked on labelled data "
        "(training does this itself)",
    )
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="labelled data to check the export on")
    data_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate", help="score a saved model on a labelled file")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument(
        "--errors",
        metavar="REPORT.html",
        help="write the error analysis as a self-contained HTML report",
    )
    p.add_argument(
        "--json", metavar="PATH", help="write the error analysis as JSON (evaluation.json's shape)"
    )
    data_options(p)
    run_options(p, 64)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="tag texts (arguments, else JSONL {id, text} on stdin)")
    p.add_argument("--model", required=True)
    p.add_argument("text", nargs="*")
    run_options(p, 64)
    p.set_defaults(func=cmd_predict)

    for name, func, what in (
        ("serve", cmd_serve, "the whole service with embedded defaults"),
        ("api", cmd_api, "the HTTP API alone"),
    ):
        p = sub.add_parser(name, help=what)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument(
            "--insecure",
            action="store_true",
            help="listen on a non-loopback --host even with no API key configured "
            "(anyone who can reach it may use it)",
        )
        if name == "api":
            p.add_argument(
                "--workers",
                type=_workers,
                help="API processes, each with its own copy of the model: one per core "
                "serves concurrent calls fastest (default: NER_API_WORKERS, 1)",
            )
        p.set_defaults(func=func)

    p = sub.add_parser("keys", help="API keys in the database: create, list, revoke")
    keys_sub = p.add_subparsers(dest="keys_command", required=True)
    k = keys_sub.add_parser("create", help="make a key; prints its token, this once")
    k.add_argument("--name", required=True, help="who or what uses it")
    k.add_argument(
        "--scopes",
        default="predict",
        help="comma-separated: predict (POST /predict), train (datasets, jobs), admin "
        "(all of them, plus promotion and metrics) (default: predict)",
    )
    k = keys_sub.add_parser("list", help="the keys, never their tokens")
    k.add_argument("--json", action="store_true", help="one JSON object a line")
    k = keys_sub.add_parser("revoke", help="stop a key working (within seconds)")
    k.add_argument("id", help="the key's id, as `ner keys list` shows it")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("worker", help="a Celery worker")
    p.add_argument("--queues", default="training,inference")
    p.set_defaults(func=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("train", "export", "evaluate", "predict"):
        _quiet_transformers()
    try:
        return int(args.func(args))
    except DatasetError as err:
        print(f"ner {args.command}: the input has problems:\n{err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BadInput as err:
        print(f"ner {args.command}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (InvalidInput, NotFound, Conflict) as err:  # the service layer's word for it
        print(f"ner {args.command}: {err.detail}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the last resort: one line for the user, the traceback on --debug
        if args.debug:
            raise
        print(
            f"ner {args.command}: error: {type(err).__name__}: {err} (--debug shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
