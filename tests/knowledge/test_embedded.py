"""The embedded index (no server): ingest, idempotency, filters, documents, proposal memory."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from genesys.client.knowledge import Knowledge, KnowledgeError
from genesys.v1 import knowledge_pb2 as pb

NOTE = """---
title: Quokka attention
authors: A. Writer; B. Writer
year: 2031
---
# Quokka attention

Quokka attention keeps a ring buffer of pivot tokens and attends only to those pivots,
which makes the cost linear in the sequence length with a constant number of pivots.

## Training

The pivots are chosen by a learned router that scores every token once per block.
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_ingest_is_idempotent_and_a_new_version_replaces_the_old(scratch_kb: Knowledge, tmp_path: Path):
    path = _write(tmp_path / "docs", "quokka.md", NOTE)
    first = scratch_kb.ingest([path], tags=["mine"])
    assert [r.status for r in first] == [pb.INGEST_STATUS_ADDED] and first[0].chunks >= 1
    again = scratch_kb.ingest([path], tags=["mine"])
    assert [r.status for r in again] == [pb.INGEST_STATUS_UNCHANGED]
    assert scratch_kb.stats().chunks == first[0].chunks

    path.write_text(NOTE.replace("ring buffer", "circular queue"))
    replaced = scratch_kb.ingest([path])
    assert replaced[0].status == pb.INGEST_STATUS_REPLACED
    docs = scratch_kb.list_documents()
    assert [d.id for d in docs] == [replaced[0].document_id]
    assert docs[0].title == "Quokka attention" and docs[0].year == 2031
    assert list(docs[0].authors) == ["A. Writer", "B. Writer"]
    hit = scratch_kb.search("circular queue of pivot tokens", k=1)[0]
    assert hit.doc_id == replaced[0].document_id and "circular queue" in hit.text


def test_filters_show_and_delete(scratch_kb: Knowledge, tmp_path: Path):
    docs = tmp_path / "docs"
    scratch_kb.ingest([_write(docs, "quokka.md", NOTE)], tags=["zoo"])
    scratch_kb.ingest([_write(docs, "wombat.txt", "Wombat networks\n\nWombat layers stack pivot "
                                                  "tokens in a burrow of memory slots.")], tags=["other"])
    assert {p.title for p in scratch_kb.search("pivot tokens", k=5, filter={"tags": ["zoo"]})} == {"Quokka attention"}
    assert {p.title for p in scratch_kb.search("pivot tokens", k=5, filter={"year_min": 2030})} == {"Quokka attention"}
    assert scratch_kb.search("pivot tokens", k=5, filter={"year_max": 2000}) == []
    wombat = scratch_kb.list_documents(tag="other")
    assert [d.title for d in wombat] == ["Wombat networks"]
    shown = scratch_kb.get_document(wombat[0].id[:8])
    assert shown.document.id == wombat[0].id and "burrow" in shown.chunks[0].text
    deleted = scratch_kb.delete_document(wombat[0].id)
    assert deleted.chunks_deleted == shown.document.chunks
    with pytest.raises(KnowledgeError) as err:
        scratch_kb.get_document(wombat[0].id)
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    assert [d.title for d in scratch_kb.list_documents()] == ["Quokka attention"]


def test_bad_requests_are_invalid_argument(scratch_kb: Knowledge):
    for call in (lambda: scratch_kb.search("   "), lambda: scratch_kb.search("x", k=101),
                 lambda: scratch_kb.search("x", filter={"year_min": 2024, "year_max": 2020}),
                 lambda: scratch_kb.get_document("not-hex!"),
                 lambda: scratch_kb.add_proposal("", "p", "text", 1.0, ""),
                 lambda: scratch_kb.add_proposal("e", "p", "  ", 1.0, ""),
                 lambda: scratch_kb.add_proposal("e", "p", "text", float("nan"), ""),
                 lambda: scratch_kb.similar_proposals("e", "")):
        with pytest.raises(KnowledgeError) as err:
            call()
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT, err.value
    with pytest.raises(ValueError, match="unknown filter key"):
        scratch_kb.search("x", filter={"colour": "red"})
    with pytest.raises(ValueError, match="k must be"):
        scratch_kb.search("x", k=0)


def test_proposal_memory_finds_the_near_duplicate_per_experiment(scratch_kb: Knowledge):
    scratch_kb.add_proposal("exp1", "p1", "Replace softmax attention with gated linear attention "
                            "whose forget gate depends on the input token.", 4.0, "sound; test recall")
    scratch_kb.add_proposal("exp1", "p2", "Use a mixture of eight experts in the feed-forward layer "
                            "with top-2 routing and a load balancing loss.", 2.5, "not novel")
    scratch_kb.add_proposal("exp2", "p9", "Gated linear attention with a data-dependent forget gate.", 3.0, "")
    hits = scratch_kb.similar_proposals("exp1", "Linear attention with an input-dependent forget gate "
                                        "instead of softmax.", k=3)
    assert [h.proposal_id for h in hits] == ["p1", "p2"]  # exp2's proposal is not exp1's memory
    assert hits[0].rating == 4.0 and hits[0].review == "sound; test recall"
    assert hits[0].score > 0.6 > hits[1].score
    scratch_kb.add_proposal("exp1", "p1", "Rotary embeddings with a learned base.", 1.0, "replaced")
    assert scratch_kb.similar_proposals("exp1", "rotary position embedding base", k=1)[0].review == "replaced"
    assert scratch_kb.stats().proposals == 3


def test_service_computed_lexical_scores_when_milvus_has_no_bm25(tmp_path: Path):
    from genesys.llm_gateway.config import KnowledgeConfig
    from genesys.llm_gateway.knowledge.engine import open_engine

    engine = open_engine(KnowledgeConfig(lexical="service"), tmp_path / "kb")
    docs = [pb.Document(filename=f"{name}.md", content=f"# {name}\n\n{text}".encode()) for name, text in (
        ("Quokka", "Quokka attention keeps pivot tokens in a ring buffer. " * 4),
        ("Wombat", "Wombat layers burrow through memory slots with a zq7 hashing trick. " * 4))]
    engine.Ingest(pb.IngestRequest(documents=docs))
    assert engine.GetStats(pb.GetStatsRequest()).lexical.startswith("service")
    lexical = engine.Search(pb.SearchRequest(query="the zq7 trick", top_k=2, mode=pb.SEARCH_MODE_LEXICAL)).hits
    assert [h.title for h in lexical] == ["Wombat"]  # only documents sharing a term score
    hybrid = engine.Search(pb.SearchRequest(query="zq7", top_k=2)).hits
    assert hybrid[0].title == "Wombat"
    engine.close()
    reopened = open_engine(KnowledgeConfig(), tmp_path / "kb")  # auto: keeps the kind it was built with
    assert reopened.store.lexical == "service"
    reopened.close()
