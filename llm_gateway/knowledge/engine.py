"""The knowledge engine: protobuf requests in, responses out, on one Milvus index.

Both the gRPC service (in the gateway process) and the SDK's embedded mode call these
methods, so the two behave alike. Errors are EngineError with the gRPC status code that
the service answers with.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
from genesys.llm_gateway.config import KnowledgeConfig
from genesys.llm_gateway.knowledge.chunking import Chunk, ChunkSpec, chunk_blocks
from genesys.llm_gateway.knowledge.embedder import (
    Embedder,
    EmbedderError,
    LocalEmbedder,
    RemoteEmbedder,
)
from genesys.llm_gateway.knowledge.readers import ReadError, mime_type_of, read
from genesys.llm_gateway.knowledge.store import (
    CHUNK_FIELDS,
    CHUNKS,
    MAX_TAG_BYTES,
    MAX_TAGS,
    PROPOSAL_TEXT_BYTES,
    PROPOSALS,
    Filter,
    IndexMismatch,
    MilvusStore,
    StoreError,
    quoted,
)
from genesys.v1 import knowledge_pb2 as pb

log = logging.getLogger("genesys.knowledge")
MAX_TOP_K = 100
MAX_DOCUMENT_BYTES = 48 * 1024 * 1024
LEXICAL_NAMES = {"milvus": "milvus-bm25", "service": "service-tf (BM25 without IDF)", "auto": "(no index yet)"}
MODES = {pb.SEARCH_MODE_UNSPECIFIED: "hybrid", pb.SEARCH_MODE_HYBRID: "hybrid",
         pb.SEARCH_MODE_DENSE: "dense", pb.SEARCH_MODE_LEXICAL: "lexical"}


class EngineError(Exception):
    """A request the engine refuses or cannot serve; `code` is the gRPC status to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def answers(method: Callable) -> Callable:
    """An RPC method: backend and embedder failures become EngineError with their status."""
    @functools.wraps(method)
    def wrapper(self, request):
        try:
            return method(self, request)
        except IndexMismatch as exc:
            raise EngineError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from exc
        except (StoreError, EmbedderError) as exc:
            raise EngineError(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc
    return wrapper


def invalid(message: str) -> EngineError:
    return EngineError(grpc.StatusCode.INVALID_ARGUMENT, message)


def document_id(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:24]


def _clip(value: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, cut at a character boundary (Milvus VARCHAR sizes are bytes)."""
    data = value.encode()
    return value if len(data) <= limit else data[:limit].decode(errors="ignore")


def _info(row: dict) -> pb.DocumentInfo:
    return pb.DocumentInfo(
        id=row["doc_id"], title=row["title"], authors=[a for a in row["authors"].split("; ") if a],
        year=row["year"], source_uri=row["source"], mime_type=row["mime"], tags=list(row["tags"] or []),
        chunks=row["n_chunks"], pages=row["pages"],
        metadata={str(k): str(v) for k, v in (row["metadata"] or {}).items()})


def _hit(row: dict, score: float) -> pb.SearchHit:
    return pb.SearchHit(
        document_id=row["doc_id"], chunk_id=row["id"], title=row["title"], text=row["text"],
        score=score, section=row["section"], page=row["page"], source_uri=row["source"],
        year=row["year"], tags=list(row["tags"] or []),
        metadata={str(k): str(v) for k, v in (row["metadata"] or {}).items()})


class KnowledgeEngine:
    def __init__(self, store: MilvusStore, embedder: Embedder, spec: ChunkSpec | None = None) -> None:
        self.store, self.embedder = store, embedder
        self.spec = spec or ChunkSpec()

    def _embed(self, texts: list[str], collection: str) -> np.ndarray:
        vectors = self.embedder.embed(texts)
        self.store.ensure(collection, int(vectors.shape[1]))
        return vectors

    # -- ingest ----------------------------------------------------------------------------

    @answers
    def Ingest(self, request: pb.IngestRequest) -> pb.IngestResponse:
        if not request.documents:
            raise invalid("no documents given")
        response = pb.IngestResponse()
        for doc in request.documents:
            result = self._ingest_one(doc)
            response.results.append(result)
            if result.status != pb.INGEST_STATUS_FAILED:
                response.document_ids.append(result.document_id)
            if result.status in (pb.INGEST_STATUS_ADDED, pb.INGEST_STATUS_REPLACED):
                response.chunks_added += result.chunks
        return response

    def _ingest_one(self, doc: pb.Document) -> pb.IngestResult:
        name = doc.filename or doc.source_uri or doc.title or "(unnamed document)"
        result = pb.IngestResult(name=name)
        try:
            result.document_id, result.status, result.chunks, result.pages = self._index(doc, name)
        except (ReadError, ValueError) as exc:
            result.status, result.error = pb.INGEST_STATUS_FAILED, str(exc)
            log.warning("event=ingest_failed name=%s error=%r", name, str(exc))
        return result

    def _index(self, doc: pb.Document, name: str) -> tuple[str, int, int, int]:
        if len(doc.content) > MAX_DOCUMENT_BYTES:
            raise ReadError(f"{len(doc.content)} bytes is over the limit of {MAX_DOCUMENT_BYTES}")
        if len(doc.tags) > MAX_TAGS or any(len(t.encode()) > MAX_TAG_BYTES or not t for t in doc.tags):
            raise ReadError(f"at most {MAX_TAGS} tags, each non-empty and at most {MAX_TAG_BYTES} bytes")
        mime = mime_type_of(doc.filename or doc.source_uri, doc.mime_type)
        doc_id = document_id(doc.content)
        existing = self.store.count(CHUNKS, f"doc_id == {quoted(doc_id)} and chunk_index == 0")
        if existing:
            return doc_id, pb.INGEST_STATUS_UNCHANGED, 0, 0
        parsed = read(doc.content, mime)
        title = doc.title or parsed.title or Path(name).stem
        authors = list(doc.authors) or parsed.authors
        year = doc.year or parsed.year
        tags = list(dict.fromkeys([*doc.tags, *parsed.tags]))
        if len(tags) > MAX_TAGS or any(len(t.encode()) > MAX_TAG_BYTES for t in tags):
            raise ReadError(f"at most {MAX_TAGS} tags (given and in the file), each at most {MAX_TAG_BYTES} bytes")
        chunks = chunk_blocks(parsed.blocks, self.spec)
        vectors = self._embed([self._embedded_text(title, c) for c in chunks], CHUNKS)
        replaced = self._drop_source(doc.source_uri) if doc.source_uri else 0
        self.store.insert_chunks([
            {"id": f"{doc_id}:{i:05d}", "doc_id": doc_id, "chunk_index": i, "n_chunks": len(chunks),
             "title": _clip(title, 1024), "section": _clip(c.section, 1024), "page": c.page,
             "text": _clip(c.text, 16384), "search_text": _clip(self._embedded_text(title, c), 16384),
             "source": _clip(doc.source_uri, 2048), "mime": mime, "authors": _clip("; ".join(authors), 2048),
             "year": year, "tags": tags, "pages": parsed.pages, "metadata": dict(doc.metadata),
             "dense": vector.tolist()}
            for i, (c, vector) in enumerate(zip(chunks, vectors, strict=True))
        ])
        log.info("event=ingested name=%s doc_id=%s chunks=%d pages=%d replaced=%d", name, doc_id,
                 len(chunks), parsed.pages, replaced)
        status = pb.INGEST_STATUS_REPLACED if replaced else pb.INGEST_STATUS_ADDED
        return doc_id, status, len(chunks), parsed.pages

    @staticmethod
    def _embedded_text(title: str, chunk: Chunk) -> str:
        """What is embedded and scored: the chunk under its document title and section."""
        head = f"{title}. {chunk.section}." if chunk.section and chunk.section != title else f"{title}."
        return f"{head}\n{chunk.text}"

    def _drop_source(self, source: str) -> int:
        old = {r["doc_id"] for r in self.store.query_chunks(f"source == {quoted(source)} and chunk_index == 0",
                                                             ["doc_id"])}
        for doc_id in old:
            self.store.delete_chunks(f"doc_id == {quoted(doc_id)}")
        return len(old)

    # -- search ----------------------------------------------------------------------------

    @answers
    def Search(self, request: pb.SearchRequest) -> pb.SearchResponse:
        query = request.query.strip()
        if not query:
            raise invalid("the query is empty")
        k = request.top_k or 5
        if not 1 <= k <= MAX_TOP_K:
            raise invalid(f"top_k must be in [1, {MAX_TOP_K}], got {request.top_k}")
        if request.mode not in MODES:
            raise invalid(f"unknown search mode {request.mode}")
        f = request.filter
        if f.year_min and f.year_max and f.year_min > f.year_max:
            raise invalid(f"filter year_min {f.year_min} is after year_max {f.year_max}")
        expression = Filter(f.year_min, f.year_max, list(f.tags), f.source_prefix,
                            list(f.document_ids)).expression()
        mode = MODES[request.mode]
        if self.store.dimension(CHUNKS) == 0:
            return pb.SearchResponse()
        vector = None if mode == "lexical" else self._embed([query], CHUNKS)[0]
        hits = self.store.search_chunks(mode, query, vector, k, expression)
        return pb.SearchResponse(hits=[_hit(row, score) for row, score in hits])

    # -- documents -------------------------------------------------------------------------

    def _resolve(self, ref: str) -> str:
        ref = ref.strip()
        if not ref:
            raise invalid("no document id given")
        if not all(c in "0123456789abcdef" for c in ref.lower()):
            raise invalid(f"{ref!r} is not a document id (hex digits)")
        ids = {r["doc_id"] for r in self.store.query_chunks(f"doc_id like {quoted(ref.lower() + '%')} and chunk_index == 0",
                                                            ["doc_id"])}
        if not ids:
            raise EngineError(grpc.StatusCode.NOT_FOUND, f"no document {ref!r}")
        if len(ids) > 1:
            raise invalid(f"{ref!r} names {len(ids)} documents; give more of the id")
        return ids.pop()

    @answers
    def GetDocument(self, request: pb.GetDocumentRequest) -> pb.GetDocumentResponse:
        doc_id = self._resolve(request.id)
        rows = sorted(self.store.query_chunks(f"doc_id == {quoted(doc_id)}"), key=lambda r: r["chunk_index"])
        return pb.GetDocumentResponse(
            document=_info(rows[0]),
            chunks=[pb.Chunk(id=r["id"], section=r["section"], page=r["page"], text=r["text"]) for r in rows])

    @answers
    def ListDocuments(self, request: pb.ListDocumentsRequest) -> pb.ListDocumentsResponse:
        if request.limit < 0:
            raise invalid(f"limit must be >= 0, got {request.limit}")
        expression = "chunk_index == 0"
        if request.tag:
            expression += f" and array_contains(tags, {quoted(request.tag)})"
        fields = [f for f in CHUNK_FIELDS if f != "text"]
        rows = sorted(self.store.query_chunks(expression, fields), key=lambda r: (r["title"].lower(), r["doc_id"]))
        if request.limit:
            rows = rows[:request.limit]
        return pb.ListDocumentsResponse(documents=[_info(r) for r in rows])

    @answers
    def DeleteDocument(self, request: pb.DeleteDocumentRequest) -> pb.DeleteDocumentResponse:
        doc_id = self._resolve(request.id)
        n = self.store.count(CHUNKS, f"doc_id == {quoted(doc_id)}")
        self.store.delete_chunks(f"doc_id == {quoted(doc_id)}")
        log.info("event=deleted doc_id=%s chunks=%d", doc_id, n)
        return pb.DeleteDocumentResponse(id=doc_id, chunks_deleted=n)

    @answers
    def GetStats(self, request: pb.GetStatsRequest) -> pb.GetStatsResponse:
        return pb.GetStatsResponse(
            documents=self.store.count(CHUNKS, "chunk_index == 0"), chunks=self.store.count(CHUNKS),
            proposals=self.store.count(PROPOSALS), embedder=self.embedder.name,
            dimension=self.store.dimension(CHUNKS) or self.store.dimension(PROPOSALS),
            backend=self.store.uri, lexical=LEXICAL_NAMES.get(self.store.lexical, self.store.lexical))

    # -- proposals -------------------------------------------------------------------------

    def _proposal_vector(self, text: str) -> np.ndarray:
        """The mean of the text's chunk embeddings: a long proposal is compared as a whole,
        not by its first few hundred tokens."""
        from genesys.llm_gateway.knowledge.readers import Block

        pieces = [c.text for c in chunk_blocks([Block(text)], self.spec)] or [text]
        mean = self._embed(pieces, PROPOSALS).mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    @staticmethod
    def _check_names(experiment: str, proposal_id: str | None = None) -> None:
        if not experiment:
            raise invalid("experiment is required")
        if len(experiment.encode()) > 200 or (proposal_id is not None and len(proposal_id.encode()) > 200):
            raise invalid("experiment and proposal_id are at most 200 bytes each")
        if proposal_id is not None and not proposal_id:
            raise invalid("proposal_id is required")

    @answers
    def AddProposal(self, request: pb.AddProposalRequest) -> pb.AddProposalResponse:
        self._check_names(request.experiment, request.proposal_id)
        if not request.text.strip():
            raise invalid("the proposal text is empty")
        for key in ("text", "review"):
            if len(getattr(request, key).encode()) > PROPOSAL_TEXT_BYTES:
                raise invalid(f"the proposal {key} is over {PROPOSAL_TEXT_BYTES} bytes")
        if not np.isfinite(request.rating):
            raise invalid("the rating must be a finite number")
        vector = self._proposal_vector(request.text)
        self.store.upsert_proposal({
            "id": json.dumps([request.experiment, request.proposal_id]), "experiment": request.experiment,
            "proposal_id": request.proposal_id, "text": request.text, "review": request.review,
            "rating": request.rating, "metadata": dict(request.metadata), "dense": vector.tolist()})
        log.info("event=proposal_added experiment=%s proposal=%s rating=%.2f", request.experiment,
                 request.proposal_id, request.rating)
        return pb.AddProposalResponse()

    @answers
    def SimilarProposals(self, request: pb.SimilarProposalsRequest) -> pb.SimilarProposalsResponse:
        self._check_names(request.experiment)
        if not request.text.strip():
            raise invalid("the text to compare is empty")
        k = request.top_k or 3
        if not 1 <= k <= MAX_TOP_K:
            raise invalid(f"top_k must be in [1, {MAX_TOP_K}], got {request.top_k}")
        if self.store.dimension(PROPOSALS) == 0:
            return pb.SimilarProposalsResponse()
        hits = self.store.search_proposals(request.experiment, self._proposal_vector(request.text), k)
        return pb.SimilarProposalsResponse(proposals=[
            pb.ProposalMatch(proposal_id=row["proposal_id"], text=row["text"], rating=row["rating"],
                             review=row["review"], score=score,
                             metadata={str(k): str(v) for k, v in (row["metadata"] or {}).items()})
            for row, score in hits])

    def close(self) -> None:
        self.store.close()


def open_engine(config: KnowledgeConfig, data_dir: Path) -> KnowledgeEngine:
    """The engine for a config: Milvus at `uri` (else milvus-lite in data_dir), its embedder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if config.embedder == "openai":
        embedder: Embedder = RemoteEmbedder(config.endpoint, config.model)
    else:
        embedder = LocalEmbedder(config.model, cache_dir=data_dir / "models", threads=config.threads)
    uri = config.uri or str(data_dir / "milvus.db")
    try:
        store = MilvusStore(uri, embedder.name, token=config.token, lexical=config.lexical)
    except IndexMismatch as exc:
        raise EngineError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from exc
    except StoreError as exc:
        raise EngineError(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc
    spec = ChunkSpec(config.chunk_chars, config.chunk_overlap, min(120, config.chunk_chars // 4))
    return KnowledgeEngine(store, embedder, spec)
