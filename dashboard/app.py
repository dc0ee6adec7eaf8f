"""The dashboard's web app (Starlette): pages rendered from templates/, the same data as
JSON under /api, the live event stream at /events, admin actions as POSTs, static assets.

Reads use the dashboard's own connection (its token may be read-only). An admin action is
sent with the admin token the browser supplies in its Authorization header, on a connection
opened for that one call, so the coordinator decides; without one it is refused here."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from genesys.client.coordinator import Coordinator, CoordinatorError
from genesys.client.llm import LLM
from genesys.v1 import auth_pb2
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from . import export, views
from .events import EventHub

HERE = Path(__file__).parent
log = logging.getLogger("genesys.dashboard")
# HTTP status and headline of the page shown for a coordinator error.
STATUS = {grpc.StatusCode.NOT_FOUND: (404, "Not found"),
          grpc.StatusCode.INVALID_ARGUMENT: (400, "Bad request"),
          grpc.StatusCode.FAILED_PRECONDITION: (409, "Not possible now"),
          grpc.StatusCode.PERMISSION_DENIED: (403, "Not allowed"),
          grpc.StatusCode.UNAUTHENTICATED: (401, "Not signed in"),
          grpc.StatusCode.UNAVAILABLE: (503, "Coordinator unreachable"),
          grpc.StatusCode.DEADLINE_EXCEEDED: (504, "Coordinator too slow"),
          grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "Budget or limit reached")}
STATES = {"pause": "paused", "resume": "active"}


def when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.filters.update(when=when, bytes=human_bytes)
    t.env.globals["now"] = time.time
    return t


def create_app(client: Coordinator, admin_client: Callable[[str], Coordinator],
               hub: EventHub | None = None, gateway: LLM | None = None) -> Starlette:
    """`client` reads for every page; `admin_client(token)` opens a connection with the
    browser's admin token for one action; `gateway`, when given, adds its LLM usage."""
    pages = templates()
    hub = hub or EventHub(client)

    def page(template: str, build: Callable[[Request], dict[str, Any]],
             frame: Callable[[Request], dict[str, Any]] | None = None):
        """A page and its JSON twin (the same data) from one view function; with `frame`, the
        page gets only that and its scripts fetch the JSON."""
        def html(request: Request) -> Response:
            data = (frame or build)(request)
            return pages.TemplateResponse(request, template, {**data, "hub": hub,
                                                              "address": client.address})

        def api(request: Request) -> Response:
            return JSONResponse(build(request))

        return html, api

    def experiments(request: Request) -> dict[str, Any]:
        try:
            rows = [views.experiment_row(e) for e in client.list_experiments()]
        except CoordinatorError as e:  # the front page stays up to say what is wrong
            return {"experiments": [], "error": coordinator_message(e)}
        return {"experiments": rows, "error": ""}

    def name(request: Request) -> str:
        return request.path_params["name"]

    routes_spec = [
        ("/", "experiments.html", experiments),
        ("/e/{name}", "experiment.html", lambda r: views.experiment_overview(client, name(r))),
        ("/e/{name}/leaderboard", "leaderboard.html",
         lambda r: views.leaderboard(client, name(r), r.query_params.get("rung", "")),
         lambda r: views.leaderboard_page(client, name(r), r.query_params.get("rung", ""))),
        ("/e/{name}/lineage", "lineage.html",
         lambda r: {"experiment": views.experiment_row(client.get_experiment(name(r)))}),
        ("/e/{name}/jobs", "jobs.html", lambda r: views.jobs_view(client, name(r))),
        ("/e/{name}/budget", "budget.html", lambda r: budget_and_usage(client, gateway, name(r))),
        ("/d/{design_id}", "design.html",
         lambda r: views.design_detail(client, r.path_params["design_id"])),
    ]
    routes = []
    for path, template, *builders in routes_spec:
        html, api = page(template, *builders)
        routes.append(Route(path, html))
        routes.append(Route("/api" + (path if path != "/" else "/experiments"), api))
    async def export_tensorboard(request: Request) -> Response:
        experiment = name(request)
        designs = await asyncio.to_thread(views.all_designs, client, experiment)
        data = await asyncio.to_thread(export.tensorboard_zip, designs)
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{experiment}-tensorboard.zip"'})

    routes.append(Route("/e/{name}/export/tensorboard.zip", export_tensorboard))
    routes.append(Route("/api/e/{name}/lineage.json",
                        lambda r: JSONResponse(views.lineage_graph(
                            views.all_designs(client, name(r))))))

    async def events(request: Request) -> Response:
        hub.start()
        sub = hub.subscribe(request.query_params.get("experiment", ""))
        last_id = request.headers.get("last-event-id", "")  # set when the browser reconnects
        seen = int(last_id) if last_id.isdigit() else -1
        fragments = pages.env

        async def stream():
            try:
                for event in list(hub.recent):  # what happened just before (not seen yet)
                    if sub.wants(event) and event["seq"] > seen:
                        yield {"event": "feed", "id": str(event["seq"]),
                               "data": fragments.get_template("_event.html").render(event=event)}
                while True:
                    event = await sub.queue.get()
                    yield {"event": "feed", "id": str(event["seq"]),
                           "data": fragments.get_template("_event.html").render(event=event)}
                    yield {"event": event["group"], "data": event["kind"]}
                    if event["kind"] == "job_progress":
                        html = fragments.get_template("_progress.html").render(p=event)
                        yield {"event": "job-progress", "data": json.dumps({"job": event["job_id"],
                                                                        "html": html})}
            finally:
                hub.unsubscribe(sub)

        return EventSourceResponse(stream(), ping=15)

    async def admin(request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not token:
            return JSONResponse({"error": "refused: this action needs an admin token "
                                          "(enter it in the admin box)"}, status_code=401)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the request body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the request body must be a JSON object"}, status_code=400)
        action = request.path_params["action"]
        target = request.path_params["target"]
        try:
            done = await asyncio.to_thread(run_admin, admin_client, token, action, target, body)
        except CoordinatorError as e:
            status, _ = STATUS.get(e.code, (502, ""))
            return JSONResponse({"error": f"refused by the coordinator: {e.code.name}: {e.details}"},
                                status_code=status)
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        return JSONResponse({"ok": True, "done": done})

    routes += [Route("/events", events),
               Route("/api/admin/{action}/{target}", admin, methods=["POST"]),
               Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")]

    async def coordinator_error(request: Request, exc: CoordinatorError) -> Response:
        status, title = STATUS.get(exc.code, (502, "Coordinator error"))
        return error_response(request, status, title, coordinator_message(exc))

    async def invalid_input(request: Request, exc: views.InvalidInput) -> Response:
        return error_response(request, 400, "Bad request", str(exc))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_response(request, exc.status_code, "Not found" if exc.status_code == 404
                              else "Error", exc.detail or "")

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("dashboard error on %s", request.url.path)
        return error_response(request, 500, "Dashboard error",
                              f"{type(exc).__name__}: {exc} (see the dashboard's log)")

    def error_response(request: Request, status: int, title: str, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message, "title": title}, status_code=status)
        return pages.TemplateResponse(request, "error.html", {"title": title, "message": message,
                                                              "status": status, "hub": hub,
                                                              "address": client.address},
                                      status_code=status)

    def coordinator_message(exc: CoordinatorError) -> str:
        if exc.code == grpc.StatusCode.UNAVAILABLE:
            return (f"The coordinator at {client.address} does not answer ({exc.details}). "
                    "Pages load again once it is back.")
        return f"{exc.details} ({exc.code.name} from {exc.method})"

    @asynccontextmanager
    async def lifespan(app: Starlette):
        hub.start()
        yield
        hub.stop()

    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={CoordinatorError: coordinator_error,
                                         views.InvalidInput: invalid_input,
                                         HTTPException: http_error, Exception: server_error})


def budget_and_usage(client: Coordinator, gateway: LLM | None, experiment: str) -> dict[str, Any]:
    return {**views.budget_view(client, experiment),
            "usage": views.llm_usage(views.iter_designs(client, experiment, full=True)),
            "gateway": views.gateway_usage(gateway, experiment)}


def run_admin(admin_client: Callable[[str], Coordinator], token: str, action: str, target: str,
              body: dict[str, Any]) -> str:
    """One admin action with the browser's token; returns what was done, in words."""
    with admin_client(token) as c:
        who = c.whoami()
        if who.role != auth_pb2.ROLE_ADMIN:
            raise CoordinatorError(grpc.StatusCode.PERMISSION_DENIED,
                                   f"token {who.name!r} has role "
                                   f"{auth_pb2.Role.Name(who.role).removeprefix('ROLE_').lower()}, "
                                   "admin actions need an admin token", "WhoAmI")
        if action in STATES:
            exp = c.update_experiment(target, state=STATES[action])
            return f"experiment {exp.name} is now {views.experiment_row(exp)['state']}"
        if action == "cancel":
            job = c.cancel_job(target, reason=str(body.get("reason") or "cancelled from the dashboard"))
            return f"job {job.id} is {views.job_state(job.state)}"
        if action == "budget":
            rung, total = body.get("rung"), body.get("total")
            if not isinstance(rung, str) or not rung:
                raise ValueError("budget: give the rung's name")
            if not isinstance(total, int) or isinstance(total, bool) or total < 0:
                raise ValueError("budget: the total must be a whole number >= 0")
            c.set_budget(target, rung, total)
            return f"rung {rung} of {target} now has a budget of {total}"
    raise ValueError(f"unknown admin action {action!r} (pause, resume, cancel, budget)")
