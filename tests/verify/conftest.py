"""Fixtures for the verification engine: small corpora and prepared datasets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from genesys.lmade.data import PreparedData, PrepareRequest, prepare

WORDS = (
    "the a house garden river letter morning evening sister brother friend walked spoke "
    "quietly loudly green old new bright dark window door table chair book wrote read "
    "carried found lost opened closed happy tired early late"
).split()

BOILERPLATE = "This text is distributed under the same licence as the collection itself."


def write_text_corpus(folder: Path, n_docs: int = 300, seed: int = 0) -> Path:
    """Synthetic documents, each with a shared boilerplate line and some repeated docs."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."
            for _ in range(rng.randint(8, 20))
        ]
        body = "\n".join([BOILERPLATE, *sentences])
        (folder / f"doc{i:04d}.txt").write_text(body)
    (folder / "copy.txt").write_text((folder / "doc0000.txt").read_text())
    return folder


@pytest.fixture
def text_corpus(tmp_path: Path) -> Path:
    return write_text_corpus(tmp_path / "corpus")


@pytest.fixture
def boilerplate() -> str:
    return BOILERPLATE


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> PreparedData:
    """A prepared dataset of synthetic text with a 512-token BPE (builds in about a second)."""
    root = tmp_path_factory.mktemp("tiny")
    corpus = write_text_corpus(root / "corpus")
    request = PrepareRequest(
        sources=(str(corpus),), tokenizer="bpe512", val_frac=0.1, test_frac=0.1
    )
    return PreparedData(prepare(request, out=root / "data"))
