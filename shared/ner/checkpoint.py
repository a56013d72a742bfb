"""Training checkpoints as plain files (no pickle): every tensor in one safetensors file
(weights, the best weights so far, the optimizer's moments, the random generators) and the
rest in JSON (epoch, position in the epoch, scheduler, early-stopping state, history).

`train()` writes one at the end of every epoch and every `checkpoint_seconds` within an
epoch, and resumes from one: a worker killed mid-training loses at most that much work.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

TENSORS = "state.safetensors"
META = "state.json"


def optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state_dict as flat tensors plus JSON (its param groups)."""
    tensors = {
        f"opt.{pid}.{name}": value
        for pid, entry in state["state"].items()
        for name, value in entry.items()
        if isinstance(value, torch.Tensor)
    }
    return tensors, {"param_groups": state["param_groups"]}


def optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def save_checkpoint(
    directory: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Write a checkpoint; the folder holds the old one or the new one, never half of each."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".writing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # safetensors wants contiguous tensors that share no memory.
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, tmp / TENSORS)
    (tmp / META).write_text(json.dumps(meta, indent=1) + "\n")
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.rename(directory, old)
    os.rename(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    directory = Path(directory)
    return load_file(directory / TENSORS), json.loads((directory / META).read_text())


def is_checkpoint(directory: Path) -> bool:
    return (Path(directory) / TENSORS).is_file() and (Path(directory) / META).is_file()
