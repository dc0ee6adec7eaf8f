"""Prepared pre-training data: dedupe, split by document, tokenise into memory-mapped shards.

Layout of a prepared folder::

    manifest.json            request, sources, dedupe stats, tokenizer, splits, checksums
    tokenizer.json           (BPE / HF tokenizers)
    train-00000.bin ...      token ids, uint16 (vocab <= 65535) or uint32, documents
    val-00000.bin            separated by the tokenizer's end-of-text id
    test-00000.bin
    val.jsonl, test.jsonl    held-out document texts (the offline evaluation suite is built
                             from test.jsonl)

No verbatim overlap between splits: exact duplicate documents are dropped, and so is every
line of >= ``LINE_DEDUPE_CHARS`` characters already seen anywhere in the corpus (boilerplate,
licence headers); documents are then assigned to a split by a hash of their text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from genesys.lmade import corpus
from genesys.lmade.corpus import CorpusError
from genesys.lmade.tokenizer import (
    TextTokenizer,
    external_tokenizer,
    load_tokenizer,
    parse_bpe_name,
    train_bpe,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1
LINE_DEDUPE_CHARS = 32
MIN_DOC_CHARS = 200
SHARD_TOKENS = 1 << 28
DEFAULT_SOURCES = ("debian",)


class DataError(RuntimeError):
    """A prepared dataset is missing, incomplete or corrupt; the message says which."""


@dataclass(frozen=True)
class PrepareRequest:
    """Everything that determines a prepared dataset (stored in the manifest)."""

    sources: tuple[str, ...] = DEFAULT_SOURCES
    tokenizer: str = "bpe8k"
    max_mb: float | None = None
    val_frac: float = 0.03
    test_frac: float = 0.03


def default_data_dir(request: PrepareRequest = PrepareRequest()) -> Path:
    """Cache folder for a request on default-like sources (stable across runs)."""
    key = hashlib.sha256(json.dumps(asdict(request), sort_keys=True).encode()).hexdigest()[:10]
    slug = re.sub(r"[^\w.-]+", "_", "+".join(request.sources))[:40]
    return corpus.cache_dir() / "data" / f"{slug}-{request.tokenizer}-{key}"


# --- collecting and cleaning documents ---------------------------------------------------


def collect(request: PrepareRequest) -> tuple[list[str], list[dict]]:
    """Raw documents of all sources (up to max_mb of text) and per-source stats."""
    budget = int(request.max_mb * 1e6) if request.max_mb else None
    docs, stats, errors = [], [], []
    total = 0
    for spec in request.sources:
        n, size = 0, 0
        try:
            for doc in corpus.documents(spec):
                if budget is not None and total >= budget:
                    break
                docs.append(doc)
                n += 1
                size += len(doc)
                total += len(doc)
        except CorpusError as e:
            errors.append(str(e))
            continue
        stats.append({"spec": spec, "docs": n, "chars": size})
    if errors:
        raise CorpusError(corpus.describe_failure(list(request.sources), errors))
    if not docs:
        raise CorpusError(
            corpus.describe_failure(list(request.sources), ["no documents"] * len(request.sources))
        )
    return docs, stats


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def dedupe(docs: Iterable[str], min_chars: int = MIN_DOC_CHARS) -> tuple[list[str], dict]:
    """Drop duplicate documents and repeated long lines (see module docstring)."""
    seen_docs: set[bytes] = set()
    seen_lines: set[int] = set()
    kept, dup_docs, dup_lines, short = [], 0, 0, 0
    for raw in docs:
        text = _normalise(raw)
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        if digest in seen_docs:
            dup_docs += 1
            continue
        seen_docs.add(digest)
        lines = []
        for line in text.split("\n"):
            key = line.strip()
            if len(key) >= LINE_DEDUPE_CHARS:
                h = hash(key)
                if h in seen_lines:
                    dup_lines += 1
                    continue
                seen_lines.add(h)
            lines.append(line)
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
        if len(text) < min_chars:
            short += 1
            continue
        kept.append(text)
    return kept, {"duplicate_docs": dup_docs, "duplicate_lines": dup_lines, "short_docs": short}


def split_of(text: str, val_frac: float, test_frac: float) -> str:
    """Split by a stable hash of the document: independent of order and of other documents."""
    u = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2**64
    if u < val_frac:
        return "val"
    if u < val_frac + test_frac:
        return "test"
    return "train"


# --- writing ------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 65535 else np.uint32)


def write_shards(
    out: Path, split: str, docs: list[str], tok: TextTokenizer, dtype: np.dtype, batch: int = 512
) -> list[dict]:
    """Tokenise docs (each followed by end-of-text) into shards of <= SHARD_TOKENS tokens."""
    shards: list[dict] = []
    handle, count = None, 0

    def close() -> None:
        handle.close()
        shards[-1]["tokens"] = count

    for start in range(0, len(docs), batch):
        for ids in tok.encode_batch(docs[start : start + batch]):
            ids.append(tok.eot_id)
            if handle is None or count + len(ids) > SHARD_TOKENS and count:
                if handle is not None:
                    close()
                name = f"{split}-{len(shards):05d}.bin"
                shards.append({"file": name})
                handle, count = open(out / name, "wb"), 0
            handle.write(np.asarray(ids, dtype=dtype).tobytes())
            count += len(ids)
    if handle is not None:
        close()
    for shard in shards:
        shard["sha256"] = _sha256(out / shard["file"])
    return shards


def _make_tokenizer(name: str, train_docs: list[str]) -> TextTokenizer:
    vocab = parse_bpe_name(name)
    return train_bpe(train_docs, vocab) if vocab else external_tokenizer(name)


def prepare(
    request: PrepareRequest = PrepareRequest(),
    out: Path | None = None,
    force: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> Path:
    """Build (or reuse, if the same request was already built there) a prepared dataset."""
    out = Path(out) if out else default_data_dir(request)
    say = on_progress or (lambda msg: log.info(msg))
    manifest_path = out / MANIFEST
    if manifest_path.exists() and not force:
        existing = json.loads(manifest_path.read_text())
        if (
            existing.get("request") == json.loads(json.dumps(asdict(request)))
            and existing.get("corpus_version") == corpus.EXTRACT_VERSION
        ):
            say(f"event=data_cached dir={out}")
            return out
    t0 = time.time()
    docs, source_stats = collect(request)
    say(f"event=data_collected docs={len(docs)} chars={sum(len(d) for d in docs)}")
    docs, dedupe_stats = dedupe(docs)
    by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for doc in docs:
        by_split[split_of(doc, request.val_frac, request.test_frac)].append(doc)
    empty = [s for s in SPLITS if not by_split[s]]
    if empty:
        raise CorpusError(
            f"corpus too small: split(s) {empty} got no document out of {len(docs)}; "
            "add text or raise --val-frac/--test-frac"
        )
    out.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)  # an interrupted rebuild must not look complete
    tok = _make_tokenizer(request.tokenizer, by_split["train"])
    say(f"event=tokenizer kind={tok.kind} vocab={tok.vocab_size}")
    dtype = token_dtype(tok.vocab_size)
    splits = {}
    for split in SPLITS:
        shards = write_shards(out, split, by_split[split], tok, dtype)
        entry = {
            "docs": len(by_split[split]),
            "bytes": sum(len(d.encode()) for d in by_split[split]),
            "tokens": sum(s["tokens"] for s in shards),
            "shards": shards,
        }
        if split != "train":
            text_file = out / f"{split}.jsonl"
            with open(text_file, "w", encoding="utf-8") as f:
                f.writelines(json.dumps({"text": d}) + "\n" for d in by_split[split])
            entry["text"] = {"file": text_file.name, "sha256": _sha256(text_file)}
        splits[split] = entry
        say(f"event=split_written split={split} docs={entry['docs']} tokens={entry['tokens']}")
    manifest = {
        "format": FORMAT_VERSION,
        "request": asdict(request),
        "corpus_version": corpus.EXTRACT_VERSION,
        "sources": source_stats,
        "dedupe": dedupe_stats,
        "tokenizer": {**tok.save(out), "vocab_size": tok.vocab_size, "eot_id": tok.eot_id},
        "dtype": dtype.name,
        "splits": splits,
        "build_seconds": round(time.time() - t0, 2),
    }
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(manifest_path)
    return out


# --- reading ------------------------------------------------------------------------------


class PreparedData:
    """A prepared dataset folder: token shards (memory-mapped), held-out texts, tokenizer."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        path = self.folder / MANIFEST
        if not path.exists():
            what = "does not exist" if not self.folder.exists() else "has no manifest.json"
            raise DataError(
                f"data folder {self.folder} {what}; build one with "
                f"`genesys data prepare --out {self.folder}` (or omit --data for the default)"
            )
        try:
            self.manifest = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{path} is not valid JSON ({e.msg})") from None
        if self.manifest.get("format") != FORMAT_VERSION:
            raise DataError(f"{path}: unsupported format {self.manifest.get('format')!r}")
        self.dtype = np.dtype(self.manifest["dtype"])
        self.vocab_size: int = self.manifest["tokenizer"]["vocab_size"]
        self.eot_id: int = self.manifest["tokenizer"]["eot_id"]
        for split in SPLITS:
            for shard in self.manifest["splits"][split]["shards"]:
                file = self.folder / shard["file"]
                expected = shard["tokens"] * self.dtype.itemsize
                if not file.exists() or file.stat().st_size != expected:
                    raise DataError(
                        f"shard {file} is missing or truncated (expected {expected} bytes); "
                        "rebuild with `genesys data prepare --force`"
                    )
        self._tokenizer: TextTokenizer | None = None

    @property
    def tokenizer(self) -> TextTokenizer:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.folder, self.manifest["tokenizer"])
        return self._tokenizer

    def shards(self, split: str) -> list[np.ndarray]:
        return [
            np.memmap(self.folder / s["file"], dtype=self.dtype, mode="r")
            for s in self.manifest["splits"][split]["shards"]
        ]

    def num_tokens(self, split: str) -> int:
        return self.manifest["splits"][split]["tokens"]

    def texts(self, split: str) -> list[str]:
        entry = self.manifest["splits"][split].get("text")
        if not entry:
            raise DataError(f"split {split!r} keeps no text in {self.folder}")
        with open(self.folder / entry["file"], encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in f if line.strip()]

    def verify_checksums(self) -> list[str]:
        """Files whose sha256 differs from the manifest (empty list = all good)."""
        bad = []
        for split in SPLITS:
            entry = self.manifest["splits"][split]
            files = list(entry["shards"]) + ([entry["text"]] if entry.get("text") else [])
            bad += [f["file"] for f in files if _sha256(self.folder / f["file"]) != f["sha256"]]
        return bad


class TokenBatches:
    """Deterministic batches of (input, target) windows; batch k depends only on (seed, k).

    The token stream is cut into non-overlapping windows of seq_len + 1 tokens; every epoch
    visits them in a fresh seeded permutation. Being a pure function of the step, the data
    order survives a resume exactly. Under DDP rank r takes rows r, r + world, ... of each
    global batch.
    """

    def __init__(
        self,
        shards: list[np.ndarray],
        seq_len: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.shards, self.seq_len, self.batch_size = shards, seq_len, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        counts = [max(0, (len(s) - 1) // seq_len) for s in shards]
        self.starts = np.cumsum([0, *counts])
        self.n_windows = int(self.starts[-1])
        if self.n_windows == 0:
            raise DataError(f"split has fewer than {seq_len + 1} tokens: nothing to train on")
        self._perm_epoch, self._perm = -1, np.empty(0, dtype=np.int64)

    def _window(self, index: int) -> np.ndarray:
        shard = int(np.searchsorted(self.starts, index, side="right")) - 1
        offset = (index - int(self.starts[shard])) * self.seq_len
        return self.shards[shard][offset : offset + self.seq_len + 1]

    def _indices(self, step: int) -> list[int]:
        out = []
        for pos in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch, i = divmod(pos, self.n_windows)
            if epoch != self._perm_epoch:
                self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)
                self._perm_epoch = epoch
            out.append(int(self._perm[i]))
        return out[self.rank :: self.world_size]

    def batch(self, step: int):
        """(x, y) int64 tensors of shape (batch_size / world_size, seq_len)."""
        import torch

        rows = np.stack([self._window(i) for i in self._indices(step)]).astype(np.int64)
        data = torch.from_numpy(rows)
        return data[:, :-1], data[:, 1:]

    def __iter__(self) -> Iterator:
        step = 0
        while True:
            yield self.batch(step)
            step += 1


def sequential_windows(shards: list[np.ndarray], seq_len: int, limit: int) -> np.ndarray:
    """The first `limit` windows of seq_len + 1 tokens, in order (validation batches)."""
    rows = []
    for shard in shards:
        for off in range(0, len(shard) - seq_len, seq_len):
            if len(rows) >= limit:
                return np.stack(rows).astype(np.int64)
            rows.append(np.asarray(shard[off : off + seq_len + 1]))
    if not rows:
        raise DataError(f"held-out split has fewer than {seq_len + 1} tokens")
    return np.stack(rows).astype(np.int64)


MONITOR_TOKENS = 65_536  # the training view's stand-in for validation: monitoring only


def _place(src: Path, dest: Path) -> None:
    """A hard link where the file system allows (no copy of big shards), else a copy."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def training_view(data: PreparedData, dest: Path) -> Path:
    """A prepared-data folder holding the training split only, for code that must not see
    the held-out splits (a sandboxed design): train shards and tokenizer files as they are,
    and as its "val" and "test" splits a slice of the last training tokens, which the
    trainer uses for its monitoring curve. Rebuilt from scratch each call."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    manifest = json.loads(json.dumps(data.manifest))
    held_out = {data.manifest["splits"][s]["text"]["file"] for s in SPLITS
                if data.manifest["splits"][s].get("text")}
    held_out |= {sh["file"] for s in SPLITS if s != "train"
                 for sh in data.manifest["splits"][s]["shards"]}
    for item in data.folder.iterdir():
        if item.is_file() and item.name != MANIFEST and item.name not in held_out:
            _place(item, dest / item.name)
    tail = np.concatenate([np.asarray(s) for s in data.shards("train")[-1:]])[-MONITOR_TOKENS:]
    monitor = dest / "monitor-00000.bin"
    monitor.write_bytes(tail.astype(data.dtype).tobytes())
    entry = {"docs": 0, "bytes": 0, "tokens": len(tail),
             "shards": [{"file": monitor.name, "tokens": len(tail), "sha256": _sha256(monitor)}]}
    for split in SPLITS:
        if split != "train":
            manifest["splits"][split] = dict(entry)
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return dest
