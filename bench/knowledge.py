"""Knowledge engine: ingest throughput, and search latency at 1k / 10k / 100k chunks, Milvus
(milvus-lite here) dense and hybrid against an exact brute-force numpy search of the same
vectors in the same run.

    python bench/knowledge.py [--sizes 1000,10000,100000] [--queries 200] [--base 400]

1. Ingest: the starter library through the whole pipeline (read, chunk, embed with the
   packaged all-MiniLM-L6-v2, insert), chunks/s and notes/s; embedding alone for reference.
2. Sizes: `--base` chunk texts made from the starter notes' sentences are embedded; each
   index of N chunks holds noisy copies of them (vector + Gaussian noise, words dropped), so
   the rows are realistic in structure without embedding N texts. For each N, p50 / p99
   latency of dense and hybrid search (query vectors precomputed) and of numpy's exact top-k
   (one matrix-vector product), their ratio, and recall@10 of Milvus dense against exact.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from genesys.llm_gateway.config import KnowledgeConfig
from genesys.llm_gateway.knowledge import starter_paths
from genesys.llm_gateway.knowledge.embedder import LocalEmbedder
from genesys.llm_gateway.knowledge.engine import open_engine
from genesys.llm_gateway.knowledge.store import CHUNKS, MilvusStore
from genesys.v1 import knowledge_pb2 as pb

K = 10
NOISE = 0.04  # per-dimension noise on unit vectors of 384 dims: copies stay near their base


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_ingest(root: Path) -> None:
    engine = open_engine(KnowledgeConfig(), root / "ingest")
    engine.embedder.embed(["load the model before timing"])
    docs = [pb.Document(content=p.read_bytes(), filename=p.name, source_uri=str(p)) for p in starter_paths()]
    started = time.perf_counter()
    response = engine.Ingest(pb.IngestRequest(documents=docs))
    elapsed = time.perf_counter() - started
    texts = [c.text for d in response.document_ids
             for c in engine.GetDocument(pb.GetDocumentRequest(id=d)).chunks]
    started = time.perf_counter()
    engine.embedder.embed(texts)
    embed_only = time.perf_counter() - started
    engine.close()
    print(f"ingest: {len(docs)} starter notes, {response.chunks_added} chunks in {elapsed:.1f} s = "
          f"{response.chunks_added / elapsed:.1f} chunks/s, {len(docs) / elapsed:.2f} notes/s; "
          f"embedding alone {embed_only:.1f} s ({embed_only / elapsed:.0%} of ingest)")


def base_texts(n: int, rng: np.random.Generator) -> list[str]:
    sentences = [s.strip() for p in starter_paths()
                 for s in re.split(r"(?<=[.!?])\s+", p.read_text().split("\n---", 1)[-1]) if len(s) > 40]
    return [" ".join(rng.choice(sentences, size=4, replace=False)) for _ in range(n)]


def noisy_rows(n: int, texts: list[str], vectors: np.ndarray, rng: np.random.Generator) -> tuple[list[dict], np.ndarray]:
    picks = rng.integers(0, len(texts), size=n)
    dense = vectors[picks] + rng.normal(0, NOISE, size=(n, vectors.shape[1])).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    rows = []
    for i, (pick, vector) in enumerate(zip(picks, dense, strict=True)):
        words = texts[pick].split()
        keep = [w for w in words if rng.random() > 0.2]
        rows.append({"id": f"{i:08d}:00000", "doc_id": f"{i:08d}", "chunk_index": 0, "n_chunks": 1,
                     "title": f"synthetic {i}", "section": "", "page": 0, "text": " ".join(keep),
                     "search_text": " ".join(keep), "source": "", "mime": "text/plain", "authors": "",
                     "year": 2020 + i % 6, "tags": [], "pages": 0, "metadata": {}, "dense": vector.tolist()})
    return rows, dense


def bench_size(root: Path, n: int, texts: list[str], vectors: np.ndarray, queries: list[str],
               query_vectors: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    store = MilvusStore(str(root / f"size-{n}.db"), "bench")
    store.ensure(CHUNKS, vectors.shape[1])
    rows, matrix = noisy_rows(n, texts, vectors, rng)
    started = time.perf_counter()
    for i in range(0, n, 2000):
        store.insert_chunks(rows[i:i + 2000])
    insert_s = time.perf_counter() - started
    timings: dict[str, list[float]] = {"dense": [], "hybrid": [], "numpy": []}
    recalls = []
    for query, vector in zip(queries, query_vectors, strict=True):
        for mode in ("dense", "hybrid"):
            started = time.perf_counter()
            hits = store.search_chunks(mode, query, vector, K, "")
            timings[mode].append(time.perf_counter() - started)
            if mode == "dense":
                found = {row["id"] for row, _ in hits}
        started = time.perf_counter()
        scores = matrix @ vector
        top = np.argpartition(-scores, K)[:K]
        exact = top[np.argsort(-scores[top])]
        timings["numpy"].append(time.perf_counter() - started)
        recalls.append(len(found & {rows[j]["id"] for j in exact}) / K)
    store.close()
    out = {f"{m}_{q}": percentile(v, q) * 1000 for m, v in timings.items() for q in (50, 99)}
    out["recall"] = float(np.mean(recalls))
    out["insert_rows_s"] = n / insert_s
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--base", type=int, default=400, help="distinct embedded chunk texts")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        root = Path(tmp)
        bench_ingest(root)
        embedder = LocalEmbedder()
        texts = base_texts(args.base, rng)
        vectors = embedder.embed(texts)
        queries = [" ".join(rng.choice(t.split(), size=6, replace=False)) for t in rng.choice(texts, args.queries)]
        started = time.perf_counter()
        query_vectors = embedder.embed(queries)
        print(f"query embedding: {(time.perf_counter() - started) / len(queries) * 1000:.1f} ms per query "
              f"(batched); one query alone is embedded before each search in the service")
        print(f"\n{'chunks':>8} {'insert/s':>9} | {'dense p50':>9} {'p99':>7} | {'hybrid p50':>10} {'p99':>7} | "
              f"{'numpy p50':>9} {'p99':>7} | {'dense/numpy':>11} {'hybrid/numpy':>12} | recall@{K}")
        for n in (int(s) for s in args.sizes.split(",")):
            r = bench_size(root, n, texts, vectors, queries, query_vectors, rng)
            print(f"{n:>8} {r['insert_rows_s']:>9.0f} | {r['dense_50']:>7.2f}ms {r['dense_99']:>5.2f}ms | "
                  f"{r['hybrid_50']:>8.2f}ms {r['hybrid_99']:>5.2f}ms | {r['numpy_50']:>7.2f}ms "
                  f"{r['numpy_99']:>5.2f}ms | {r['dense_50'] / r['numpy_50']:>10.1f}x "
                  f"{r['hybrid_50'] / r['numpy_50']:>11.1f}x | {r['recall']:.3f}")
            sys.stdout.flush()
    print(f"\nlatencies over {args.queries} queries, query embedding excluded; ratio = Milvus p50 / numpy p50")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
