"""Retrieval quality over the starter library: labelled queries (query -> the note that must
come back, in tests/knowledge/queries.tsv), recall@5 and MRR for hybrid, dense and lexical
search on the same index with the default embedder (all-MiniLM-L6-v2) and Milvus BM25."""

from __future__ import annotations

from pathlib import Path

from genesys.client.knowledge import Knowledge
from genesys.llm_gateway.knowledge import starter_paths

QUERIES = Path(__file__).with_name("queries.tsv")
K = 5


def _labelled() -> list[tuple[str, str]]:
    rows = [line.split("\t") for line in QUERIES.read_text().splitlines() if line and not line.startswith("#")]
    return [(query, note.strip()) for query, note in rows]


def _scores(kb: Knowledge, ids: dict[str, str], mode: str) -> tuple[float, float, list[str]]:
    found, reciprocal, missed = 0, 0.0, []
    labelled = _labelled()
    for query, note in labelled:
        ranked = [p.doc_id for p in kb.search(query, k=K, mode=mode)]
        if ids[note] in ranked:
            found += 1
            reciprocal += 1 / (ranked.index(ids[note]) + 1)
        else:
            missed.append(f"{query!r} -> {note}")
    return found / len(labelled), reciprocal / len(labelled), missed


def test_the_labelled_set_covers_every_starter_note():
    labelled = _labelled()
    notes = {p.name for p in starter_paths()}
    assert len(labelled) >= 40
    assert {note for _, note in labelled} == notes
    assert len(notes) >= 25


def test_hybrid_search_finds_the_right_note_and_beats_dense_and_lexical_alone(starter_kb: Knowledge):
    ids = {Path(d.source_uri).name: d.id for d in starter_kb.list_documents(tag="starter")}
    results = {mode: _scores(starter_kb, ids, mode) for mode in ("hybrid", "dense", "lexical")}
    print(f"\n{len(_labelled())} labelled queries over {len(ids)} starter notes, top {K} passages:")
    for mode, (recall, mrr, missed) in results.items():
        print(f"  {mode:8} recall@{K} {recall:.3f}  MRR {mrr:.3f}  missed {len(missed)}")
        for line in missed:
            print(f"           missed {line}")
    hybrid, dense, lexical = (results[m][:2] for m in ("hybrid", "dense", "lexical"))
    assert hybrid[0] >= 0.85, results["hybrid"][2]
    assert hybrid[0] >= max(dense[0], lexical[0])
    assert hybrid[1] > dense[1] and hybrid[1] > lexical[1], results


def test_starter_notes_carry_their_metadata(starter_kb: Knowledge):
    docs = {Path(d.source_uri).name: d for d in starter_kb.list_documents(tag="starter")}
    mamba = docs["mamba.md"]
    assert mamba.year == 2023 and "Albert Gu" in mamba.authors and "ssm" in mamba.tags
    seeds = {name for name, d in docs.items() if "seed" in d.tags}
    assert seeds == {"transformer-gpt.md", "mamba2.md", "retnet.md", "rwkv6.md", "ttt.md"}
    hits = starter_kb.search("state space model", k=10, filter={"tags": ["seed"], "year_min": 2024})
    assert hits and {Path(h.source).name for h in hits} <= {"mamba2.md", "rwkv6.md", "ttt.md"}
