"""The KnowledgeService gRPC servicer, served by the gateway process next to LLMGateway.

Same bearer tokens as the gateway (deleting a document needs an admin token). The engine
is blocking (embedding, Milvus), so every call runs on one worker thread: calls are
serialised, which keeps milvus-lite and the embedder single-threaded, and the event loop
keeps serving chat requests meanwhile. The engine is opened on that thread too, first, so
the gateway serves chat while the index opens; calls made meanwhile wait for it, and if it
cannot be opened they get its error (UNAVAILABLE, FAILED_PRECONDITION).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import grpc
from genesys.llm_gateway.auth import AuthError, TokenAuth
from genesys.llm_gateway.knowledge.engine import EngineError, KnowledgeEngine
from genesys.v1 import knowledge_pb2 as pb
from genesys.v1 import knowledge_pb2_grpc as pb_grpc

log = logging.getLogger("genesys.knowledge")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["KnowledgeService"].full_name


class KnowledgeServicer(pb_grpc.KnowledgeServiceServicer):
    def __init__(self, open_engine: Callable[[], KnowledgeEngine], auth: TokenAuth) -> None:
        self.auth = auth
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="knowledge")
        self.engine: Future[KnowledgeEngine] = self._worker.submit(open_engine)

    def _run(self, method: str, request):
        return getattr(self.engine.result(), method)(request)

    async def _call(self, method: str, request, context: grpc.aio.ServicerContext, admin: bool = False):
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        try:
            who = self.auth.identify(metadata)
        except AuthError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        if admin and not who.is_admin:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method} needs an admin token")
        started = time.monotonic()
        try:
            response = await asyncio.get_running_loop().run_in_executor(self._worker, self._run, method, request)
        except EngineError as exc:
            log.info("event=knowledge_refused method=%s caller=%s code=%s error=%r", method,
                     who.name or "-", exc.code.name, str(exc))
            await context.abort(exc.code, str(exc))
        log.info("event=knowledge_call method=%s caller=%s ms=%.1f", method, who.name or "-",
                 (time.monotonic() - started) * 1000)
        return response

    async def Ingest(self, request, context):
        return await self._call("Ingest", request, context)

    async def Search(self, request, context):
        return await self._call("Search", request, context)

    async def GetDocument(self, request, context):
        return await self._call("GetDocument", request, context)

    async def ListDocuments(self, request, context):
        return await self._call("ListDocuments", request, context)

    async def DeleteDocument(self, request, context):
        return await self._call("DeleteDocument", request, context, admin=True)

    async def GetStats(self, request, context):
        return await self._call("GetStats", request, context)

    async def AddProposal(self, request, context):
        return await self._call("AddProposal", request, context)

    async def SimilarProposals(self, request, context):
        return await self._call("SimilarProposals", request, context)

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        if self.engine.exception() is None:
            self.engine.result().close()
