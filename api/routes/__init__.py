"""All routers, gathered in one place."""

from fastapi import APIRouter, Depends

from api.deps import require_api_key
from api.routes import datasets, health, jobs, models, monitoring, predict, web

api_router = APIRouter()
api_router.include_router(health.router)
# The page is public; the API calls it makes carry the key the user gives it.
api_router.include_router(web.router)
_protected = [Depends(require_api_key)]
for module in (predict, datasets, jobs, models, monitoring):
    api_router.include_router(module.router, dependencies=_protected)
