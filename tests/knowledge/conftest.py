"""One embedded index with the starter library for the whole session (the embedding model
loads once per process, in a few seconds), and helpers to make documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="the knowledge tests need the knowledge extra: pip install -e '.[knowledge]'")

from genesys.client.knowledge import Knowledge  # noqa: E402
from genesys.llm_gateway.knowledge import starter_paths  # noqa: E402


@pytest.fixture(scope="session")
def starter_kb(tmp_path_factory) -> Iterator[Knowledge]:
    """An embedded index holding the starter library (tag "starter"); tests must not change it."""
    kb = Knowledge(data_dir=tmp_path_factory.mktemp("starter-kb"))
    results = kb.ingest(starter_paths(), tags=["starter"])
    assert all(r.error == "" for r in results), [r.error for r in results if r.error]
    yield kb
    kb.close()


@pytest.fixture
def scratch_kb(tmp_path: Path) -> Iterator[Knowledge]:
    """An empty embedded index of its own (the model is already loaded in this process)."""
    kb = Knowledge(data_dir=tmp_path / "kb")
    yield kb
    kb.close()
