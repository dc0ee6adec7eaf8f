"""The Milvus side: two collections (chunks of documents, proposals of experiments), their
schemas, metadata filters and dense / lexical / hybrid search.

The lexical score is Milvus's BM25 function over the chunk's text (a sparse vector Milvus
computes at insert and at query time) where the backend has it, else a sparse vector the
service computes (`lexical`); it is fused with the dense ranking by reciprocal rank. The
embedder's name and dimension are stored as collection properties: an index built with one
model is never searched or extended with another.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from genesys.llm_gateway.knowledge import lexical

log = logging.getLogger("genesys.knowledge")
CHUNKS = "genesys_chunks"
PROPOSALS = "genesys_proposals"
RRF_K = 60
QUERY_PAGE = 1000
MAX_QUERY_WINDOW = 16384  # Milvus refuses offset + limit beyond this
CHUNK_FIELDS = ["id", "doc_id", "chunk_index", "n_chunks", "title", "section", "page", "text",
                "source", "mime", "authors", "year", "tags", "pages", "metadata"]
PROPOSAL_FIELDS = ["experiment", "proposal_id", "text", "rating", "review", "metadata"]
MAX_TAGS, MAX_TAG_BYTES = 32, 128
TEXT_BYTES = 16384
PROPOSAL_TEXT_BYTES = 65535


class StoreError(RuntimeError):
    """The backend cannot be opened or refused an operation."""


class IndexMismatch(StoreError):
    """The index was built with another embedding model or dimension."""


@dataclass
class Filter:
    year_min: int = 0
    year_max: int = 0
    tags: list[str] = field(default_factory=list)
    source_prefix: str = ""
    document_ids: list[str] = field(default_factory=list)

    def expression(self) -> str:
        """The Milvus boolean expression; string literals are JSON-quoted."""
        terms = []
        if self.year_min:
            terms.append(f"year >= {int(self.year_min)}")
        if self.year_max:
            terms.append(f"year > 0 and year <= {int(self.year_max)}")
        if self.tags:
            terms.append(f"array_contains_any(tags, {json.dumps(list(self.tags))})")
        if self.source_prefix:
            prefix = self.source_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            terms.append(f"source like {json.dumps(prefix + '%')}")
        if self.document_ids:
            terms.append(f"doc_id in {json.dumps(list(self.document_ids))}")
        return " and ".join(terms)


def quoted(value: str) -> str:
    return json.dumps(value)


def _drop_unimplemented(record: logging.LogRecord) -> bool:
    """milvus-lite's in-process server lacks AllocTimestamp; pymilvus asks on every insert,
    falls back to its own clock, and the server logs a traceback each time."""
    return "Method not implemented" not in record.getMessage() and not (
        record.exc_info and isinstance(record.exc_info[1], NotImplementedError))


def milvus_errors(method: Callable) -> Callable:
    """Milvus's exceptions as StoreError, with the backend's message."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from pymilvus.exceptions import MilvusException

        try:
            return method(self, *args, **kwargs)
        except MilvusException as exc:
            raise StoreError(f"Milvus at {self.uri}: {exc.message if hasattr(exc, 'message') else exc}") from exc
    return wrapper


class MilvusStore:
    def __init__(self, uri: str, embedder_name: str, token: str = "", lexical: str = "auto") -> None:
        """lexical: milvus (the BM25 function), service (lexical.py's vectors) or auto (milvus
        when the backend has it); an existing index keeps the kind it was built with."""
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        # pymilvus logs every refused call with a traceback; the caller reports it once
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        logging.getLogger("grpc._server").addFilter(_drop_unimplemented)
        self.uri = uri
        self.embedder_name = embedder_name
        self.local = not uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))  # milvus-lite
        try:
            # milvus-lite's in-process server takes the client's 10 s keepalive pings for abuse
            # (GOAWAY too_many_pings, logged on stderr); a server over the network keeps them
            options = {} if not self.local else {"grpc.keepalive_time_ms": 600_000,
                                                               "grpc.keepalive_permit_without_calls": False}
            self.client = MilvusClient(uri=uri, token=token, grpc_options=options)
        except (MilvusException, OSError, RuntimeError) as exc:
            raise StoreError(f"cannot open the Milvus index at {uri}: {exc}") from exc
        self._lock = threading.RLock()
        self._dimension: dict[str, int] = {}
        self.lexical = lexical
        self._open_collections()

    @milvus_errors
    def _open_collections(self) -> None:
        for name in (CHUNKS, PROPOSALS):
            if self.client.has_collection(name):
                props = self.client.describe_collection(name).get("properties") or {}
                self._dimension[name] = self._check_properties(name, props)
                if name == CHUNKS:
                    self.lexical = props.get("genesys.lexical", "milvus")
                self.client.load_collection(name)

    # -- collections -----------------------------------------------------------------------

    def _check_properties(self, name: str, props: dict[str, str]) -> int:
        stored = props.get("genesys.embedder", "")
        if stored != self.embedder_name:
            raise IndexMismatch(
                f"the index at {self.uri} ({name}) was built with the embedder {stored!r}, not "
                f"{self.embedder_name!r}: configure that embedder, or use another data dir / URI")
        return int(props.get("genesys.dimension", "0"))

    def dimension(self, name: str) -> int:
        return self._dimension.get(name, 0)

    @milvus_errors
    def ensure(self, name: str, dimension: int) -> None:
        """Create the collection for vectors of `dimension`, or check that it has that size."""
        with self._lock:
            have = self._dimension.get(name)
            if have is not None:
                if have != dimension:
                    raise IndexMismatch(f"the index {name} holds {have}-dimensional vectors; the embedder "
                                        f"{self.embedder_name!r} makes {dimension}-dimensional ones")
                return
            properties = {"genesys.embedder": self.embedder_name, "genesys.dimension": str(dimension)}
            if name == PROPOSALS:
                self._create(name, *self._proposal_schema(dimension), properties)
            else:
                self._create_chunks(dimension, properties)
            self._dimension[name] = dimension

    def _create(self, name: str, schema, index, properties: dict[str, str]) -> None:
        self.client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong",
                                      properties=properties)

    def _create_chunks(self, dimension: int, properties: dict[str, str]) -> None:
        from pymilvus.exceptions import MilvusException

        if self.lexical in ("auto", "milvus"):
            try:
                self._create(CHUNKS, *self._chunk_schema(dimension, bm25=True),
                             properties | {"genesys.lexical": "milvus"})
                self.lexical = "milvus"
                return
            except MilvusException as exc:
                if self.lexical == "milvus":
                    raise
                log.info("event=knowledge_lexical_fallback reason=%r", str(exc))
        self._create(CHUNKS, *self._chunk_schema(dimension, bm25=False), properties | {"genesys.lexical": "service"})
        self.lexical = "service"

    def _chunk_schema(self, dimension: int, bm25: bool):
        from pymilvus import DataType, Function, FunctionType

        s = self.client.create_schema(auto_id=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=96)
        s.add_field("doc_id", DataType.VARCHAR, max_length=64)
        s.add_field("chunk_index", DataType.INT64)
        s.add_field("n_chunks", DataType.INT64)
        s.add_field("title", DataType.VARCHAR, max_length=1024)
        s.add_field("section", DataType.VARCHAR, max_length=1024)
        s.add_field("page", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES)
        s.add_field("search_text", DataType.VARCHAR, max_length=TEXT_BYTES, enable_analyzer=bm25)
        s.add_field("source", DataType.VARCHAR, max_length=2048)
        s.add_field("mime", DataType.VARCHAR, max_length=64)
        s.add_field("authors", DataType.VARCHAR, max_length=2048)
        s.add_field("year", DataType.INT64)
        s.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_TAGS,
                    max_length=MAX_TAG_BYTES)
        s.add_field("pages", DataType.INT64)
        s.add_field("metadata", DataType.JSON)
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        index = self.client.prepare_index_params()
        index.add_index("dense", index_type="AUTOINDEX", metric_type="COSINE")
        if bm25:
            s.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                    input_field_names=["search_text"], output_field_names=["sparse"]))
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25" if bm25 else "IP")
        return s, index

    def _proposal_schema(self, dimension: int):
        from pymilvus import DataType

        s = self.client.create_schema(auto_id=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
        s.add_field("experiment", DataType.VARCHAR, max_length=256)
        s.add_field("proposal_id", DataType.VARCHAR, max_length=256)
        s.add_field("text", DataType.VARCHAR, max_length=PROPOSAL_TEXT_BYTES)
        s.add_field("review", DataType.VARCHAR, max_length=PROPOSAL_TEXT_BYTES)
        s.add_field("rating", DataType.DOUBLE)
        s.add_field("metadata", DataType.JSON)
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
        index = self.client.prepare_index_params()
        index.add_index("dense", index_type="AUTOINDEX", metric_type="COSINE")
        return s, index

    # -- chunks ----------------------------------------------------------------------------

    @milvus_errors
    def _written(self, name: str) -> None:
        # milvus-lite searches unflushed rows by brute force in Python (1.3 s at 10k rows here,
        # 5 ms once flushed and indexed), so it is flushed after every write. A server indexes
        # its growing segments itself and rate-limits flushes: it is left alone.
        if self.local:
            self.client.flush(name)

    def insert_chunks(self, rows: list[dict[str, Any]]) -> None:
        if self.lexical == "service":
            rows = [row | {"sparse": lexical.document_vector(row["search_text"])} for row in rows]
        if rows:
            with self._lock:
                self.client.insert(CHUNKS, rows)
                self._written(CHUNKS)

    @milvus_errors
    def query_chunks(self, expression: str, fields: list[str] | None = None) -> list[dict[str, Any]]:
        """Every chunk row matching `expression`, read in pages (up to Milvus's query window)."""
        rows: list[dict[str, Any]] = []
        if CHUNKS not in self._dimension:
            return rows
        for offset in range(0, MAX_QUERY_WINDOW, QUERY_PAGE):
            with self._lock:
                page = self.client.query(CHUNKS, filter=expression, output_fields=fields or CHUNK_FIELDS,
                                         limit=QUERY_PAGE, offset=offset)
            rows.extend(page)
            if len(page) < QUERY_PAGE:
                break
        return rows

    @milvus_errors
    def count(self, name: str, expression: str = "") -> int:
        if name not in self._dimension:
            return 0
        with self._lock:
            rows = self.client.query(name, filter=expression, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    @milvus_errors
    def delete_chunks(self, expression: str) -> None:
        if CHUNKS in self._dimension:
            with self._lock:
                self.client.delete(CHUNKS, filter=expression)
                self._written(CHUNKS)

    @milvus_errors
    def search_chunks(self, mode: str, query: str, vector: np.ndarray | None, k: int,
                      expression: str) -> list[tuple[dict[str, Any], float]]:
        """(row, score) best first; mode is dense | lexical | hybrid."""
        if CHUNKS not in self._dimension:
            return []
        from pymilvus import AnnSearchRequest, RRFRanker

        fields = CHUNK_FIELDS
        metric, sparse_query = (("IP", lexical.query_vector(query)) if self.lexical == "service"
                                else ("BM25", query))
        with self._lock:
            if mode == "dense":
                result = self.client.search(CHUNKS, data=[vector.tolist()], anns_field="dense", limit=k,
                                            filter=expression, output_fields=fields,
                                            search_params={"metric_type": "COSINE"})
            elif mode == "lexical":
                result = self.client.search(CHUNKS, data=[sparse_query], anns_field="sparse", limit=k,
                                            filter=expression, output_fields=fields,
                                            search_params={"metric_type": metric})
            else:
                depth = max(4 * k, 20)
                requests = [
                    AnnSearchRequest(data=[vector.tolist()], anns_field="dense",
                                     param={"metric_type": "COSINE"}, limit=depth, expr=expression),
                    AnnSearchRequest(data=[sparse_query], anns_field="sparse", param={"metric_type": metric},
                                     limit=depth, expr=expression),
                ]
                result = self.client.hybrid_search(CHUNKS, requests, ranker=RRFRanker(RRF_K), limit=k,
                                                   output_fields=fields)
        hits = result[0] if result else []
        # milvus-lite reports BM25 as a negated distance; the score is its magnitude either way
        return [(hit["entity"], abs(float(hit["distance"])) if mode == "lexical" else float(hit["distance"]))
                for hit in hits]

    # -- proposals -------------------------------------------------------------------------

    @milvus_errors
    def upsert_proposal(self, row: dict[str, Any]) -> None:
        with self._lock:
            self.client.upsert(PROPOSALS, [row])
            self._written(PROPOSALS)

    @milvus_errors
    def search_proposals(self, experiment: str, vector: np.ndarray, k: int) -> list[tuple[dict[str, Any], float]]:
        if PROPOSALS not in self._dimension:
            return []
        with self._lock:
            result = self.client.search(PROPOSALS, data=[vector.tolist()], anns_field="dense", limit=k,
                                        filter=f"experiment == {quoted(experiment)}",
                                        output_fields=PROPOSAL_FIELDS, search_params={"metric_type": "COSINE"})
        return [(hit["entity"], float(hit["distance"])) for hit in (result[0] if result else [])]

    def close(self) -> None:
        with self._lock:
            self.client.close()
