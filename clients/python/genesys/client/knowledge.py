"""Python SDK for the knowledge engine: the shared literature index and proposal memory.

    from genesys.client.knowledge import Knowledge
    kb = Knowledge("gateway:50061", token=...)       # the shared service (the gateway process)
    kb = Knowledge(data_dir="~/kb")                   # or an embedded index on this machine
    for p in kb.search("selective state space recurrence", k=5):
        print(p.title, p.section, p.page, p.score)
    kb.add_proposal("exp1", "p-17", text, rating=4.0, review="...")
    kb.similar_proposals("exp1", draft, k=3)

With no address (and no GENESYS_KB_ADDRESS) the index is embedded: milvus-lite and the
packaged all-MiniLM-L6-v2 embedder run in this process, in `data_dir` (GENESYS_KB_DATA_DIR,
else the user's data dir); that needs the `knowledge` extra. Token: GENESYS_KB_TOKEN, else
the gateway's token (GENESYS_LLM_TOKEN or GENESYS_LLM_TOKEN_FILE). CA bundle for TLS: GENESYS_KB_CA_CERT.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from genesys.client.llm import gateway_token
from genesys.v1 import knowledge_pb2 as pb
from genesys.v1 import knowledge_pb2_grpc as pb_grpc

MODES = {"hybrid": pb.SEARCH_MODE_HYBRID, "dense": pb.SEARCH_MODE_DENSE, "lexical": pb.SEARCH_MODE_LEXICAL}
FILTER_KEYS = ("year_min", "year_max", "tags", "tag", "source_prefix", "document_ids")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class KnowledgeError(RuntimeError):
    """The knowledge service refused or failed a request; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Passage:
    doc_id: str
    title: str
    section: str
    page: int  # 1-based; 0 for formats without pages
    text: str
    score: float  # hybrid: fused reciprocal-rank score; dense: cosine; lexical: BM25
    source: str


@dataclass(frozen=True)
class ProposalHit:
    proposal_id: str
    text: str
    rating: float
    review: str
    score: float  # cosine similarity of the two texts, in [-1, 1]


def default_data_dir() -> Path:
    """GENESYS_KB_DATA_DIR, else $XDG_DATA_HOME/genesys/knowledge (~/.local/share/...)."""
    if os.environ.get("GENESYS_KB_DATA_DIR"):
        return Path(os.environ["GENESYS_KB_DATA_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "genesys" / "knowledge"


def search_filter(filter: dict[str, Any] | None) -> pb.SearchFilter:
    """{"year_min": 2020, "year_max": 2024, "tags": [...] (or "tag": "..."), "source_prefix": "...",
    "document_ids": [...]} as the request's filter (documents without a year never match a
    year bound); unknown keys are refused."""
    out = pb.SearchFilter()
    for key, value in (filter or {}).items():
        if key not in FILTER_KEYS:
            raise ValueError(f"unknown filter key {key!r} (known: {', '.join(FILTER_KEYS)})")
        if key in ("tags", "tag", "document_ids"):
            values = [value] if isinstance(value, str) else list(value)
            getattr(out, "tags" if key == "tag" else key).extend(values)
        else:
            setattr(out, key, value)
    return out


def document_of(path: Path, tags: Sequence[str] = ()) -> pb.Document:
    """A file as a Document to ingest (its type from the extension, checked by the service)."""
    return pb.Document(content=path.read_bytes(), filename=path.name, source_uri=str(path.resolve()),
                       tags=list(tags))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the supported files under each folder (sorted)."""
    from genesys.llm_gateway.knowledge.readers import MIME_BY_SUFFIX

    out: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MIME_BY_SUFFIX))
        else:
            out.append(path)
    return out


class _Remote:
    """The shared service over gRPC."""

    def __init__(self, address: str, token: str | None, tls_ca: str | None, timeout: float) -> None:
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        if tls_ca:
            creds = grpc.ssl_channel_credentials(Path(tls_ca).read_bytes())
            self._channel = grpc.secure_channel(address, creds, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._stub = pb_grpc.KnowledgeServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout

    def call(self, method: str, request):
        try:
            return getattr(self._stub, method)(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise KnowledgeError(exc.code(), exc.details() or "") from exc

    def close(self) -> None:
        self._channel.close()


class _Embedded:
    """The engine in this process, on milvus-lite in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        try:
            from genesys.llm_gateway.config import KnowledgeConfig
            from genesys.llm_gateway.knowledge.engine import EngineError, open_engine
        except ImportError as exc:
            raise KnowledgeError(grpc.StatusCode.FAILED_PRECONDITION,
                                 f"the embedded index needs the knowledge extra "
                                 f"(pip install 'genesys[knowledge]'): {exc}") from exc
        self._errors = EngineError
        try:
            self._engine = open_engine(KnowledgeConfig(), data_dir)
        except EngineError as exc:
            raise KnowledgeError(exc.code, str(exc)) from exc

    def call(self, method: str, request):
        try:
            return getattr(self._engine, method)(request)
        except self._errors as exc:
            raise KnowledgeError(exc.code, str(exc)) from exc

    def close(self) -> None:
        self._engine.close()


class Knowledge:
    """A knowledge index: the shared service at `address`, else an embedded one in `data_dir`."""

    def __init__(self, address: str | None = None, token: str | None = None,
                 data_dir: str | Path | None = None, tls_ca: str | None = None,
                 timeout: float = 120.0) -> None:
        self.address = address or os.environ.get("GENESYS_KB_ADDRESS") or None
        if self.address:
            token = token if token is not None else (os.environ.get("GENESYS_KB_TOKEN")
                                                     or gateway_token())
            tls_ca = tls_ca or os.environ.get("GENESYS_KB_CA_CERT") or None
            self._backend: _Remote | _Embedded = _Remote(self.address, token, tls_ca, timeout)
            self.data_dir = None
        else:
            self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
            self._backend = _Embedded(self.data_dir)

    def __enter__(self) -> Knowledge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._backend.close()

    # -- literature ------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, filter: dict | None = None, mode: str = "hybrid") -> list[Passage]:
        """The top-k passages for a text query. filter: see `search_filter`; mode: hybrid | dense | lexical."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        request = pb.SearchRequest(query=query, top_k=k, filter=search_filter(filter), mode=MODES[mode])
        return [Passage(h.document_id, h.title, h.section, h.page, h.text, h.score, h.source_uri)
                for h in self._backend.call("Search", request).hits]

    def ingest_documents(self, documents: Sequence[pb.Document]) -> list[pb.IngestResult]:
        return list(self._backend.call("Ingest", pb.IngestRequest(documents=list(documents))).results)

    def ingest(self, paths: Iterable[str | Path], tags: Sequence[str] = (),
               on_result: Callable[[pb.IngestResult], None] | None = None) -> list[pb.IngestResult]:
        """Ingest files (and the supported files under folders), one request per file so a
        progress display can follow; a file that cannot be read is a FAILED result, by name."""
        results = []
        for path in expand_paths(paths):
            try:
                document = document_of(path, tags)
            except OSError as exc:
                result = pb.IngestResult(name=str(path), status=pb.INGEST_STATUS_FAILED,
                                         error=f"cannot read it: {exc.strerror or exc}")
            else:
                result = self.ingest_documents([document])[0]
                result.name = str(path)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    def get_document(self, doc_id: str) -> pb.GetDocumentResponse:
        return self._backend.call("GetDocument", pb.GetDocumentRequest(id=doc_id))

    def list_documents(self, tag: str = "", limit: int = 0) -> list[pb.DocumentInfo]:
        return list(self._backend.call("ListDocuments", pb.ListDocumentsRequest(tag=tag, limit=limit)).documents)

    def delete_document(self, doc_id: str) -> pb.DeleteDocumentResponse:
        return self._backend.call("DeleteDocument", pb.DeleteDocumentRequest(id=doc_id))

    def stats(self) -> pb.GetStatsResponse:
        return self._backend.call("GetStats", pb.GetStatsRequest())

    # -- proposal memory -------------------------------------------------------------------

    def add_proposal(self, experiment: str, proposal_id: str, text: str, rating: float, review: str,
                     metadata: dict | None = None) -> None:
        """Index a proposal with its review and rating (the same id again replaces it)."""
        request = pb.AddProposalRequest(experiment=experiment, proposal_id=proposal_id, text=text,
                                        rating=rating, review=review,
                                        metadata={str(k): str(v) for k, v in (metadata or {}).items()})
        self._backend.call("AddProposal", request)

    def similar_proposals(self, experiment: str, text: str, k: int = 3) -> list[ProposalHit]:
        """The experiment's k earlier proposals most similar to `text`, most similar first."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        request = pb.SimilarProposalsRequest(experiment=experiment, text=text, top_k=k)
        return [ProposalHit(m.proposal_id, m.text, m.rating, m.review, m.score)
                for m in self._backend.call("SimilarProposals", request).proposals]
