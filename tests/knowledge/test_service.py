"""The KnowledgeService in a real gateway process over TLS with bearer tokens: two designers
share one index, a PDF made here is found by a phrase on its second page, bad files are
reported by name, deleting needs an admin token, and the index survives a restart."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from genesys.client.knowledge import Knowledge, KnowledgeError
from genesys.v1 import knowledge_pb2 as pb
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from .gateway_proc import GENESYS, TOKENS, KnowledgeGateway, make_certs

pytestmark = pytest.mark.slow
SECOND_PAGE = "The wombat gating trick halves the recurrent state of every layer."


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[KnowledgeGateway]:
    from agent.procs import free_tcp_port

    certs = make_certs(tmp_path_factory.mktemp("certs"))
    gateway = KnowledgeGateway(tmp_path_factory.mktemp("gateway"), free_tcp_port(), certs)
    gateway.start()
    yield gateway
    gateway.stop()


def _client(service: KnowledgeGateway, who: str | None) -> Knowledge:
    token = TOKENS[who][1] if who else ""
    return Knowledge(service.address, token=token, tls_ca=str(service.certs / "ca.pem"))


@pytest.fixture(scope="module")
def wombat_pdf(tmp_path_factory) -> Path:
    return _pdf(tmp_path_factory.mktemp("pdf") / "wombat.pdf")


def _pdf(path: Path) -> Path:
    matplotlib = pytest.importorskip("matplotlib", reason="the PDF is written with matplotlib (report extra)")
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    pages = ("1 Introduction\nBlocks for language models are compared here.", f"2 Method\n{SECOND_PAGE}")
    with plt.rc_context({"pdf.fonttype": 42}), PdfPages(buffer, metadata={"Title": "Wombat Gating", "CreationDate": None}) as pdf:
        for text in pages:
            fig = plt.figure(figsize=(8.5, 11))
            fig.text(0.1, 0.8, text)
            pdf.savefig(fig)
            plt.close(fig)
    path.write_bytes(buffer.getvalue())
    return path


def test_health_and_reflection_list_the_knowledge_service(service: KnowledgeGateway):
    creds = grpc.ssl_channel_credentials((service.certs / "ca.pem").read_bytes())
    with grpc.secure_channel(service.address, creds) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        reply = next(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in reply.list_services_response.service}
    assert {"genesys.v1.KnowledgeService", "genesys.v1.LLMGateway", "grpc.health.v1.Health"} <= names


def test_plaintext_and_tokenless_calls_are_refused(service: KnowledgeGateway):
    with _client(service, None) as kb, pytest.raises(KnowledgeError) as err:
        kb.stats()
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
    with Knowledge(service.address, token=TOKENS["designer-a"][1], timeout=5) as kb, \
            pytest.raises(KnowledgeError) as err:
        kb.stats()  # no CA: a plaintext client cannot talk to the TLS server
    assert err.value.code == grpc.StatusCode.UNAVAILABLE


def test_two_designers_share_documents_and_proposals(service: KnowledgeGateway, wombat_pdf: Path,
                                                     tmp_path: Path):
    pdf = wombat_pdf
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.7\nthis is not a PDF body")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "slides.pptx").write_bytes(b"PK\x03\x04")
    with _client(service, "designer-a") as a, _client(service, "designer-b") as b:
        results = a.ingest([tmp_path / "corrupt.pdf", tmp_path / "empty.md", pdf, tmp_path / "slides.pptx"],
                           tags=["papers"])
        by_name = {Path(r.name).name: r for r in results}
        assert by_name["wombat.pdf"].status == pb.INGEST_STATUS_ADDED and by_name["wombat.pdf"].pages == 2
        assert "not a readable PDF" in by_name["corrupt.pdf"].error
        assert "empty" in by_name["empty.md"].error
        assert "unsupported file type '.pptx'" in by_name["slides.pptx"].error
        assert all(r.status == pb.INGEST_STATUS_FAILED for n, r in by_name.items() if n != "wombat.pdf")

        hit = b.search("which trick halves the recurrent state?", k=1)[0]
        assert (hit.title, hit.page, hit.section) == ("Wombat Gating", 2, "2 Method")
        assert SECOND_PAGE in hit.text and hit.doc_id == by_name["wombat.pdf"].document_id

        a.add_proposal("shared-exp", "a-1", "Add a wombat gate to the recurrent state update of Mamba2.",
                       3.5, "plausible, check the state size claim", {"designer": "a"})
        seen = b.similar_proposals("shared-exp", "A gated state update for Mamba2 using the wombat trick", k=2)
        assert [(p.proposal_id, p.rating, p.review) for p in seen] == [
            ("a-1", 3.5, "plausible, check the state size claim")]


def test_bad_requests_and_worker_deletes_are_refused(service: KnowledgeGateway):
    with _client(service, "designer-a") as kb:
        with pytest.raises(KnowledgeError) as err:
            kb.search("   ")
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(KnowledgeError) as err:
            kb.get_document("0123456789abcdef")
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(KnowledgeError) as err:
            kb.delete_document("0123")
        assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


def _cli(service: KnowledgeGateway, who: str, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"GENESYS_KB_ADDRESS": service.address, "GENESYS_KB_TOKEN": TOKENS[who][1],
                        "GENESYS_KB_CA_CERT": str(service.certs / "ca.pem")}
    return subprocess.run([*GENESYS, "kb", *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_against_the_service(service: KnowledgeGateway, tmp_path: Path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "kangaroo.md").write_text("# Kangaroo attention\n\nKangaroo attention hops over every "
                                       "second key, which halves the cost of attention.\n")
    (notes / "ignored.bin").write_bytes(b"\x00")  # a folder's unsupported files are skipped
    ingest = _cli(service, "designer-b", "ingest", str(notes), "--tag", "cli")
    assert ingest.returncode == 0, ingest.stderr
    assert "added" in ingest.stdout and "kangaroo.md" in ingest.stdout and "ignored.bin" not in ingest.stdout
    again = _cli(service, "designer-b", "ingest", str(notes / "kangaroo.md"))
    assert again.returncode == 0 and again.stdout.startswith("unchanged")
    found = _cli(service, "designer-b", "search", "hopping over keys to halve the attention cost", "-k", "1", "--json")
    assert found.returncode == 0, found.stderr
    [passage] = json.loads(found.stdout)
    assert passage["title"] == "Kangaroo attention"
    listed = json.loads(_cli(service, "designer-b", "list", "--tag", "cli", "--json").stdout)
    assert [d["title"] for d in listed] == ["Kangaroo attention"]
    shown = _cli(service, "designer-b", "show", listed[0]["id"][:10])
    assert "hops over every second key" in shown.stdout
    refused = _cli(service, "designer-b", "delete", listed[0]["id"])
    assert refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr
    deleted = _cli(service, "operator", "delete", listed[0]["id"])
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    failed = _cli(service, "designer-b", "ingest", str(tmp_path / "missing.md"))
    assert failed.returncode == 1 and "missing.md" in failed.stdout
    assert _cli(service, "designer-b", "search").returncode == 2  # usage error


def test_the_index_survives_a_restart_and_reingest_is_a_no_op(service: KnowledgeGateway, wombat_pdf: Path):
    # lexical search and no proposal lookup: the restarted process need not load the embedder
    query = "wombat gating trick recurrent state"
    with _client(service, "designer-a") as kb:
        before = kb.search(query, k=3, mode="lexical")
        stats = kb.stats()
    assert before and stats.proposals >= 1
    service.stop()
    service.start()
    with _client(service, "designer-b") as kb:
        assert kb.search(query, k=3, mode="lexical") == before
        assert kb.stats() == stats
        [again] = kb.ingest([wombat_pdf], tags=["papers"])
        assert again.status == pb.INGEST_STATUS_UNCHANGED
        assert kb.stats().chunks == stats.chunks
