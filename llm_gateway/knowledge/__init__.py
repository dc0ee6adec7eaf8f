"""The knowledge engine: a shared literature index on Milvus and each experiment's proposals.

Modules, one job each: `readers` (file bytes -> titled, sectioned, paged text blocks),
`chunking` (blocks -> bounded, overlapping chunks), `embedder` (text -> vectors: the packaged
all-MiniLM-L6-v2 or an OpenAI-compatible endpoint), `store` (Milvus collections, hybrid
search), `engine` (ingest / search / proposals on top of those), `api` (protobuf requests in,
responses out; used by the gRPC `service` and by the SDK's embedded mode).

This package's import is light: the heavy libraries (pymilvus, pypdf, sentence-transformers)
load in the modules that use them.
"""

from __future__ import annotations

from pathlib import Path

STARTER_DIR = Path(__file__).resolve().parent / "starter"


def starter_paths() -> list[Path]:
    """The starter library's notes (one Markdown file per architecture family)."""
    return sorted(STARTER_DIR.glob("*.md"))
