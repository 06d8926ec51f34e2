"""App information routes: /info, /parameters, /meta, /site and /end-users."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import DifyError
from .server import Simulator


def routes(sim: Simulator) -> list[Route]:
    def simple(attr: str):
        async def handler(request: Request) -> Response:
            return JSONResponse(getattr(sim.app_for(request), attr)())

        return handler

    async def end_user(request: Request) -> Response:
        app = sim.app_for(request)
        wanted = str(request.path_params["end_user_id"])
        for (app_key, _), record in sim.store.end_users.items():
            if app_key == app.key and record["id"] == wanted:
                return JSONResponse(record)
        raise DifyError(404, "end_user_not_found", "End user not found.")

    async def parameters(request: Request) -> Response:
        return JSONResponse(sim.app_for(request).parameters(newer_fields=sim.profile(request).newer_fields))

    return [
        Route("/v1/info", simple("info"), methods=["GET"]),
        Route("/v1/parameters", parameters, methods=["GET"]),
        Route("/v1/meta", simple("meta"), methods=["GET"]),
        Route("/v1/site", simple("site"), methods=["GET"]),
        Route("/v1/end-users/{end_user_id:uuid}", end_user, methods=["GET"]),
    ]
