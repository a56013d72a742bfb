"""All routers, gathered in one place, each with the API-key scope it needs (the key itself
was checked before the route by api/auth.py; health, docs and the web page are public)."""

from fastapi import APIRouter

from api.deps import requires
from api.routes import datasets, health, jobs, models, monitoring, predict, web
from shared.states import Scope

api_router = APIRouter()
api_router.include_router(health.router)
# The page is public; the API calls it makes carry the key the user gives it.
api_router.include_router(web.router)
api_router.include_router(predict.router, dependencies=[requires(Scope.predict)])
api_router.include_router(datasets.router, dependencies=[requires(Scope.train)])
api_router.include_router(jobs.router, dependencies=[requires(Scope.train)])
# Reading the registry: any key; promoting: admin (models.py).
api_router.include_router(models.router, dependencies=[requires(Scope.predict, Scope.train)])
api_router.include_router(monitoring.router, dependencies=[requires(Scope.admin)])
