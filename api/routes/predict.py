"""Quick prediction from the production model held in memory."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SettingsDep, StateDep
from api.schemas import (
    COMMON_ERRORS,
    PredictManyResponse,
    PredictOneResponse,
    PredictRequest,
    error,
)
from shared.errors import TooLarge

router = APIRouter(tags=["predict"], responses=COMMON_ERRORS)


@router.post(
    "/predict",
    response_model=PredictOneResponse | PredictManyResponse,
    responses={
        413: error("a text or the list is over the limit"),
        503: error("no model yet, the queue is full, or the deadline passed (Retry-After)"),
    },
)
async def predict(
    body: PredictRequest, state: StateDep, settings: SettingsDep
) -> PredictOneResponse | PredictManyResponse:
    """Tag one `text` or a list of `texts` with the production model."""
    texts = [body.text] if body.text is not None else list(body.texts or [])
    if len(texts) > settings.max_texts_per_request:
        raise TooLarge(
            f"{len(texts)} texts in one request; the limit is {settings.max_texts_per_request} "
            "(use POST /jobs/predict for bulk work)"
        )
    for i, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            raise TooLarge(
                f"text {i} has {len(text)} characters; the limit is {settings.max_text_chars}"
            )
    version, results = await state.batcher.predict(texts)
    if body.text is not None:
        return PredictOneResponse.model_validate({"model_version": version, "entities": results[0]})
    return PredictManyResponse.model_validate(
        {"model_version": version, "results": [{"entities": ents} for ents in results]}
    )
