"""A moving average of the weights over the training steps (EMA), the weights kept.

The weights after any one step carry that step's noise; their exponential moving average
over the recent steps usually scores a little higher and moves less from epoch to epoch
(Polyak averaging; used this way in e.g. TensorFlow's `ExponentialMovingAverage` and
timm's `ModelEma`). The average is torch's own `AveragedModel`; the decay follows
TensorFlow's warm-up, `min(decay, (1 + n) / (10 + n))` after n updates, so the average
spans about the last tenth of the steps taken so far until `decay` caps it (at 0.999,
after ~9,000 steps): the first steps' random classifier fades out of it on short runs
and long runs alike.

Off by default (`TrainConfig.ema_decay` 0): measured on CoNLL-2003 and GMB it led on
validation in every epoch, most in the early ones, but ended level (docs/benchmarks.md,
"A moving average of the weights"). It helps runs stopped early or cut short.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch.optim.swa_utils import AveragedModel


def warmup_decay(decay: float, n_averaged: int) -> float:
    return min(decay, (1 + n_averaged) / (10 + n_averaged))


class WeightAverage:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), or 0 for off, not {decay}")
        self.decay = decay

        @torch.no_grad()
        def update(
            averaged: Sequence[torch.Tensor], current: Sequence[torch.Tensor], n: torch.Tensor | int
        ) -> None:
            # lerp is for floating point only; the integer buffers (position ids) are
            # constants, copied as they are.
            weight = 1 - warmup_decay(self.decay, int(n))
            for avg, cur in zip(averaged, current, strict=True):
                if avg.is_floating_point():
                    avg.lerp_(cur, weight)
                else:
                    avg.copy_(cur)

        # use_buffers: the average is a whole model state, buffers included, that can
        # replace the model's own (`applied`).
        self._average = AveragedModel(model, multi_avg_fn=update, use_buffers=True)

    def update(self, model: torch.nn.Module) -> None:
        """After an optimiser step."""
        self._average.update_parameters(model)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """`model` holds the averaged weights inside the block, its own again after it."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self._average.module.state_dict())
        try:
            yield
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self._average.state_dict())

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self._average.load_state_dict(tensors)
