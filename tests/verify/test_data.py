"""Data preparation: sources, dedupe, splits without verbatim overlap, shards, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from genesys.lmade import corpus
from genesys.lmade.corpus import EXTRACT_VERSION, CorpusError, unwrap_paragraphs
from genesys.lmade.data import (
    SPLITS,
    DataError,
    PreparedData,
    PrepareRequest,
    TokenBatches,
    prepare,
)


def _split_docs(data: PreparedData, split: str) -> list[str]:
    tokens = np.concatenate([np.asarray(s) for s in data.shards(split)])
    cuts = np.flatnonzero(tokens == data.eot_id)
    docs, start = [], 0
    for end in cuts:
        docs.append(data.tokenizer.decode(tokens[start:end].tolist()))
        start = end + 1
    return docs


def _long_lines(docs: list[str]) -> set[str]:
    return {line.strip() for d in docs for line in d.split("\n") if len(line.strip()) >= 32}


def test_splits_have_no_verbatim_overlap(text_corpus: Path, boilerplate: str, tmp_path: Path):
    out = prepare(
        PrepareRequest(sources=(str(text_corpus),), val_frac=0.1, test_frac=0.1),
        out=tmp_path / "ds",
    )
    data = PreparedData(out)
    docs = {s: _split_docs(data, s) for s in SPLITS}
    assert all(docs[s] for s in SPLITS)
    assert docs["test"] == data.texts("test")  # the shards decode back to the held-out text
    lines = {s: _long_lines(docs[s]) for s in SPLITS}
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert not lines[a] & lines[b], f"{a}/{b} share lines"
    all_docs = [d for s in SPLITS for d in docs[s]]
    assert sum(boilerplate in d for d in all_docs) == 1  # boilerplate kept once only
    assert data.manifest["dedupe"]["duplicate_docs"] == 1  # copy.txt
    assert data.dtype == np.uint16 and data.vocab_size <= 8192  # small corpus: fewer merges
    assert data.verify_checksums() == []


def test_prepare_reuses_an_identical_build_and_detects_corruption(text_corpus, tmp_path):
    request = PrepareRequest(
        sources=(str(text_corpus),), tokenizer="bpe1024", val_frac=0.1, test_frac=0.1
    )
    out = prepare(request, out=tmp_path / "ds")
    stamp = os.stat(out / "manifest.json").st_mtime_ns
    assert prepare(request, out=out) == out
    assert os.stat(out / "manifest.json").st_mtime_ns == stamp
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "corpus_version": 0}))
    prepare(request, out=out)  # built from older corpus cleaning: rebuilt
    assert json.loads((out / "manifest.json").read_text())["corpus_version"] == EXTRACT_VERSION
    data = PreparedData(out)
    assert 0 < data.vocab_size <= 1024
    shard = out / data.manifest["splits"]["val"]["shards"][0]["file"]
    raw = bytearray(shard.read_bytes())
    raw[0] ^= 1
    shard.write_bytes(bytes(raw))
    assert data.verify_checksums() == [shard.name]
    shard.write_bytes(bytes(raw[:-2]))
    with pytest.raises(DataError, match="truncated"):
        PreparedData(out)


def test_jsonl_and_parquet_sources(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    texts = [f"Record {i} says that " + " ".join([f"word{i * 7 % 50}"] * 60) for i in range(120)]
    (tmp_path / "src").mkdir()
    with open(tmp_path / "src" / "a.jsonl", "w") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in texts[:60])
    pq.write_table(pa.table({"text": texts[60:]}), tmp_path / "src" / "b.parquet")
    out = prepare(
        PrepareRequest(
            sources=(str(tmp_path / "src"),), tokenizer="bpe512", val_frac=0.2, test_frac=0.2
        ),
        out=tmp_path / "ds",
    )
    data = PreparedData(out)
    assert sum(data.manifest["splits"][s]["docs"] for s in SPLITS) == 120


def test_bad_paths_give_clear_errors(tmp_path):
    with pytest.raises(CorpusError, match=r"does not exist.*--source PATH"):
        prepare(PrepareRequest(sources=(str(tmp_path / "missing"),)), out=tmp_path / "ds")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .txt"):
        prepare(PrepareRequest(sources=(str(tmp_path / "empty"),)), out=tmp_path / "ds")
    with pytest.raises(DataError, match="does not exist.*genesys data prepare"):
        PreparedData(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no manifest.json"):
        PreparedData(tmp_path / "empty")


def test_token_batches_are_a_pure_function_of_the_step():
    shards = [np.arange(1000, dtype=np.uint16), np.arange(1000, 1600, dtype=np.uint16)]
    a = TokenBatches(shards, seq_len=16, batch_size=8, seed=3)
    b = TokenBatches(shards, seq_len=16, batch_size=8, seed=3)
    x5, y5 = a.batch(5)
    a.batch(0)
    assert (b.batch(5)[0] == x5).all() and (y5[:, :-1] == x5[:, 1:]).all()
    # one epoch visits every window once; DDP ranks split the rows of each batch
    steps = a.n_windows // 8
    seen = np.concatenate([a.batch(s)[0][:, 0].numpy() for s in range(steps)])
    assert len(set(seen.tolist())) == steps * 8
    r0 = TokenBatches(shards, 16, 8, seed=3, rank=0, world_size=2).batch(5)[0]
    r1 = TokenBatches(shards, 16, 8, seed=3, rank=1, world_size=2).batch(5)[0]
    assert (r0 == x5[0::2]).all() and (r1 == x5[1::2]).all()


def test_gpt2_tokenizer_reads_a_tiktoken_ranks_file(text_corpus, tmp_path, monkeypatch):
    import base64
    import importlib.util

    from genesys.lmade.tokenizer import GPT2Tokenizer, TokenizerError

    if importlib.util.find_spec("whisper") is None:
        monkeypatch.delenv("GENESYS_GPT2_TIKTOKEN", raising=False)
        with pytest.raises(TokenizerError, match="openai-whisper"):
            GPT2Tokenizer()
    # a byte-level ranks file in gpt2.tiktoken's format (base64 token, rank), no merges
    ranks = tmp_path / "bytes.tiktoken"
    ranks.write_text("".join(f"{base64.b64encode(bytes([b])).decode()} {b}\n" for b in range(256)))
    monkeypatch.setenv("GENESYS_GPT2_TIKTOKEN", str(ranks))
    out = prepare(
        PrepareRequest(sources=(str(text_corpus),), tokenizer="gpt2", val_frac=0.1, test_frac=0.1),
        out=tmp_path / "ds",
    )
    data = PreparedData(out)
    assert data.vocab_size == 257 and data.eot_id == 256
    assert _split_docs(data, "val") == data.texts("val")


def test_hard_wrapped_prose_is_unwrapped_and_code_lists_kept():
    prose = (
        "It is a truth universally acknowledged, that a single man in\n"
        "possession of a good fortune, must be in want of a wife. However\n"
        "little known the feelings."
    )
    code = "    def f(x):\n        return x + 1\n    print(f(2))"
    items = (
        "- first item of a list that is long enough to look wrapped\n"
        "- second item of the same list, also long enough to be wrapped"
    )
    short = "CHAPTER 1\nAn opening line"
    text = "\n\n".join([prose, code, items, short])
    out = unwrap_paragraphs(text).split("\n\n")
    assert out[0] == " ".join(prose.split("\n"))
    assert out[1:] == [code, items, short]
    assert unwrap_paragraphs(out[0]) == out[0]


def test_debian_texts_of_an_older_extraction_are_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_CACHE", str(tmp_path))
    folder = tmp_path / "corpus" / "debian"
    folder.mkdir(parents=True)
    stale = [folder / "r-cran-janeaustenr.jsonl", folder / "r-cran-janeaustenr-v1.jsonl"]
    other = folder / "python3-doc-v1.jsonl"
    for f in [*stale, other]:
        f.write_text(json.dumps({"text": "old"}) + "\n")

    def fetch(key, target):
        target.write_text(json.dumps({"text": f"new {key}"}) + "\n")

    monkeypatch.setattr(corpus, "_fetch_debian", fetch)
    assert list(corpus.debian_documents(["r-cran-janeaustenr"])) == ["new r-cran-janeaustenr"]
    assert not any(f.exists() for f in stale) and other.exists()
    assert (folder / f"r-cran-janeaustenr-v{EXTRACT_VERSION}.jsonl").exists()


def test_training_view_holds_the_training_split_only(tiny_data, tmp_path):
    from genesys.lmade.data import MONITOR_TOKENS, training_view

    view = PreparedData(training_view(tiny_data, tmp_path / "view"))
    names = {p.name for p in view.folder.iterdir()}
    assert not any(n.startswith(("val", "test")) for n in names), names
    assert view.num_tokens("train") == tiny_data.num_tokens("train")
    train = np.concatenate([np.asarray(s) for s in tiny_data.shards("train")])
    monitor = np.asarray(view.shards("val")[0])
    assert len(monitor) == min(MONITOR_TOKENS, len(tiny_data.shards("train")[-1]))
    assert np.array_equal(monitor, train[-len(monitor):])  # held-out text never copied
    assert view.tokenizer.encode("the cat") == tiny_data.tokenizer.encode("the cat")
    with pytest.raises(Exception, match="keeps no text"):
        view.texts("test")
