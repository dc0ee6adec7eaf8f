"""The OpenAI-compatible embeddings endpoint as the embedder (retried on 5xx), and an index
built with one embedder refused to another (FAILED_PRECONDITION, naming both)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import pytest
from genesys.llm_gateway.config import KnowledgeConfig
from genesys.llm_gateway.knowledge.engine import EngineError, open_engine
from genesys.v1 import knowledge_pb2 as pb

DIM = 64


def _vector(text: str) -> list[float]:
    """A hashed bag of words: texts sharing words point the same way."""
    v = np.zeros(DIM)
    for word in text.lower().split():
        v[int(hashlib.sha256(word.strip(".,").encode()).hexdigest(), 16) % DIM] += 1.0
    return v.tolist()


@pytest.fixture
def endpoint() -> Iterator[tuple[str, dict]]:
    seen = {"requests": 0, "fail_next": 1}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen["requests"] += 1
            if seen["fail_next"]:
                seen["fail_next"] -= 1
                status, answer = 503, {"error": "warming up"}
            elif self.path != "/v1/embeddings" or body["model"] != "bow-64":
                status, answer = 404, {"error": "no such model"}
            else:
                status, answer = 200, {"data": [{"index": i, "embedding": _vector(t)}
                                                for i, t in reversed(list(enumerate(body["input"])))]}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_remote_embedder_indexes_and_a_mismatched_embedder_is_refused(endpoint, tmp_path: Path):
    url, seen = endpoint
    remote = KnowledgeConfig(embedder="openai", endpoint=url, model="bow-64")
    engine = open_engine(remote, tmp_path)
    bats = "Echolocation attention listens to the echo of every key before it reads the value. " * 3
    owls = "Owl layers rotate their heads all the way round to look back over the sequence. " * 3
    doc = pb.Document(filename="bats.md", content=f"# Bats\n\n{bats}\n\n# Owls\n\n{owls}".encode())
    [result] = engine.Ingest(pb.IngestRequest(documents=[doc])).results
    assert result.status == pb.INGEST_STATUS_ADDED, result.error
    assert seen["requests"] >= 2  # the 503 was retried
    assert result.chunks == 2
    hits = engine.Search(pb.SearchRequest(query="echo of every key", top_k=2, mode=pb.SEARCH_MODE_DENSE)).hits
    assert [h.section for h in hits] == ["Bats", "Owls"] and hits[0].score > hits[1].score
    stats = engine.GetStats(pb.GetStatsRequest())
    assert (stats.embedder, stats.dimension) == ("bow-64", DIM)
    engine.close()

    with pytest.raises(EngineError) as err:
        open_engine(KnowledgeConfig(), tmp_path)  # the packaged MiniLM on the same index
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "'bow-64'" in str(err.value) and "all-MiniLM-L6-v2" in str(err.value)


def test_an_unreachable_endpoint_is_unavailable_not_internal(tmp_path: Path):
    engine = open_engine(KnowledgeConfig(embedder="openai", endpoint="http://127.0.0.1:9", model="m"), tmp_path)
    with pytest.raises(EngineError) as err:
        engine.Ingest(pb.IngestRequest(documents=[pb.Document(filename="a.txt", content=b"some text")]))
    assert err.value.code == grpc.StatusCode.UNAVAILABLE and "127.0.0.1:9" in str(err.value)
    engine.close()
