"""Text sources for pre-training corpora: documents as plain strings.

A source spec is one of
  ``debian``                      the offline default (English text from Debian packages)
  ``debian:PKG[,PKG...]``         only some of those packages
  ``PATH``                        a file or folder of .txt / .md / .rst / .jsonl / .parquet
  ``hf:NAME[:CONFIG][@SPLIT]``    a Hugging Face dataset (needs network or a local HF cache)

The Debian default needs no download beyond the package manager: each package is fetched
with ``apt-get download``, unpacked with ``dpkg-deb -x`` into a temporary folder, turned
into documents and cached as JSONL, so later runs read the cache only. Hard-wrapped prose
(Debian texts, local .txt/.md/.rst files) is unwrapped to one line per paragraph.
"""

from __future__ import annotations

import glob
import gzip
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".rst", ".text")
# Long texts (books, manuals) are cut at paragraph breaks so that splitting by document
# gives held-out sets with many independent passages.
MAX_DOC_CHARS = 8000
# Bump when extraction or cleaning changes, so that cached package texts (and datasets
# prepared from them) are rebuilt.
EXTRACT_VERSION = 3
# Lines that start a list item, a table row, a code fence or a prompt are never joined.
_KEEP_LINE = re.compile(r"^\s*([-*+|>]\s|#\.|\d+[.)]\s|```|\$ )")


class CorpusError(RuntimeError):
    """No usable text: the message says what was tried and how to fix it."""


def cache_dir() -> Path:
    """Where downloaded corpora and prepared datasets are cached (GENESYS_CACHE overrides)."""
    root = os.environ.get("GENESYS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "genesys"
    )
    return Path(root)


def split_long(text: str, max_chars: int = MAX_DOC_CHARS) -> list[str]:
    """Cut text at blank lines into pieces of at most ~max_chars (a paragraph is never cut)."""
    if len(text) <= max_chars:
        return [text]
    pieces, current, size = [], [], 0
    for para in re.split(r"\n\s*\n", text):
        if current and size + len(para) > max_chars:
            pieces.append("\n\n".join(current))
            current, size = [], 0
        current.append(para)
        size += len(para) + 2
    if current:
        pieces.append("\n\n".join(current))
    return pieces


_RST_DROP = re.compile(r"^(\s*\.\. .*|\s*:[\w -]+:.*|\s*([=\-~^\"'`#*+<>_.:])\2{3,}\s*)$")


def _is_hard_wrapped(lines: list[str]) -> bool:
    """Lines of one paragraph filled to a similar width, with one continuation indent."""
    widths = [len(line.rstrip()) for line in lines[:-1]]
    indents = {len(line) - len(line.lstrip()) for line in lines[1:]}
    return (
        min(widths) >= 40
        and min(widths) >= 0.75 * max(widths)
        and len(indents) == 1
        and not any(_KEEP_LINE.match(line) for line in lines[1:])
    )


def unwrap_paragraphs(text: str) -> str:
    """Join the lines of hard-wrapped prose paragraphs (books, manuals wrapped at ~72
    columns), keeping code, lists, tables and short lines as they are.

    Evaluation passages are whole paragraphs; a model trained on wrapped text learns to
    predict a newline every ~12 words, which costs it most of its cloze accuracy."""
    out = []
    for para in re.split(r"\n[ \t]*\n", text):
        lines = para.split("\n")
        if len(lines) > 1 and _is_hard_wrapped(lines):
            indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
            para = indent + " ".join(line.strip() for line in lines)
        out.append(para)
    return "\n\n".join(out)


def strip_rst(text: str) -> str:
    """Drop reStructuredText directives, field lists and heading rules; unwrap roles."""
    lines = [line for line in text.splitlines() if not _RST_DROP.match(line)]
    text = "\n".join(lines)
    text = re.sub(r":[\w:.-]+:`([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- Debian packages -------------------------------------------------------------------


def _read_r_strings(blob: bytes) -> list[list[str]]:
    """Character vectors of an R lazy-load database (.rdb): [len][zlib(serialize(x))]..."""
    vectors, pos = [], 0
    while pos + 4 < len(blob):
        inflater = zlib.decompressobj()
        data = inflater.decompress(blob[pos + 4 :])
        pos = len(blob) - len(inflater.unused_data)
        if not data.startswith(b"X\n"):
            continue
        # header: format, version, R version, min version, encoding name
        off = 2 + 12
        enc_len = struct.unpack(">i", data[off : off + 4])[0]
        off += 4 + enc_len
        sexp_type, count = struct.unpack(">ii", data[off : off + 8])
        off += 8
        if sexp_type & 0xFF != 16:  # STRSXP
            continue
        strings = []
        for _ in range(count):
            _flags, length = struct.unpack(">ii", data[off : off + 8])
            off += 8
            if length < 0:
                strings.append("")
                continue
            strings.append(data[off : off + length].decode("utf-8", "replace"))
            off += length
        vectors.append(strings)
    return vectors


def _docs_janeaustenr(root: Path) -> Iterator[str]:
    for rdb in glob.glob(str(root / "usr/lib/R/site-library/janeaustenr/data/*.rdb")):
        for book in _read_r_strings(Path(rdb).read_bytes()):
            text = "\n".join(book)
            yield from re.split(r"\n(?=CHAPTER |Chapter \d)", text)


def _docs_rst(pattern: str) -> Callable[[Path], Iterator[str]]:
    def extract(root: Path) -> Iterator[str]:
        for path in sorted(glob.glob(str(root / pattern), recursive=True)):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8", errors="replace") as f:
                yield strip_rst(f.read())

    return extract


def _docs_gcide(root: Path) -> Iterator[str]:
    # dictd files are dictzip = gzip-compatible; entries start at column 0 after a blank line.
    for path in glob.glob(str(root / "usr/share/dictd/gcide.dict.dz")):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            text = f.read()
        entries = re.split(r"\n\n(?=\S)", text)
        for i in range(0, len(entries), 40):
            yield "\n\n".join(entries[i : i + 40])


@dataclass(frozen=True)
class DebianPackage:
    names: tuple[str, ...]  # candidates, first found wins (names differ across releases)
    extract: Callable[[Path], Iterator[str]]


# Smallest and most prose-like first, so that a size limit keeps the best text.
DEBIAN_PACKAGES: dict[str, DebianPackage] = {
    "r-cran-janeaustenr": DebianPackage(("r-cran-janeaustenr",), _docs_janeaustenr),
    "python3-doc": DebianPackage(
        ("python3.11-doc", "python3.12-doc", "python3.13-doc", "python3-doc"),
        _docs_rst("usr/share/doc/python3*/html/_sources/**/*.rst.txt"),
    ),
    "linux-doc": DebianPackage(
        ("linux-doc-6.1", "linux-doc"),
        _docs_rst("usr/share/doc/linux-doc*/Documentation/**/*.[rt][sx][tt].gz"),
    ),
    "dict-gcide": DebianPackage(("dict-gcide",), _docs_gcide),
}


def _fetch_debian(key: str, target: Path) -> None:
    """Download + unpack one package and write its documents to target (JSONL)."""
    pkg = DEBIAN_PACKAGES[key]
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise CorpusError("apt-get/dpkg-deb not found (not a Debian-based system)")
    errors = []
    with tempfile.TemporaryDirectory(prefix="genesys-deb-") as tmp:
        for name in pkg.names:
            proc = subprocess.run(
                ["apt-get", "download", name], cwd=tmp, capture_output=True, text=True
            )
            debs = glob.glob(os.path.join(tmp, "*.deb"))
            if proc.returncode == 0 and debs:
                break
            errors.append(f"{name}: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
        else:
            raise CorpusError(
                f"apt-get download failed for {key} ({'; '.join(errors)}); "
                "run `apt-get update` first if the package lists are missing"
            )
        unpacked = Path(tmp) / "root"
        subprocess.run(["dpkg-deb", "-x", debs[0], str(unpacked)], check=True)
        partial = target.with_suffix(".partial")
        with open(partial, "w", encoding="utf-8") as out:
            for doc in pkg.extract(unpacked):
                for piece in split_long(unwrap_paragraphs(doc)):
                    out.write(json.dumps({"text": piece}) + "\n")
        os.replace(partial, target)


def debian_documents(packages: list[str] | None = None) -> Iterator[str]:
    """Documents of the offline default corpus, fetching and caching packages as needed."""
    keys = packages or list(DEBIAN_PACKAGES)
    unknown = [k for k in keys if k not in DEBIAN_PACKAGES]
    if unknown:
        raise CorpusError(
            f"unknown Debian corpus package(s) {unknown}; known: {list(DEBIAN_PACKAGES)}"
        )
    folder = cache_dir() / "corpus" / "debian"
    folder.mkdir(parents=True, exist_ok=True)
    errors = []
    for key in keys:
        target = folder / f"{key}-v{EXTRACT_VERSION}.jsonl"
        if not target.exists():
            try:
                _fetch_debian(key, target)
            except (CorpusError, subprocess.CalledProcessError) as e:
                # one missing package (another Debian release) must not lose the others
                errors.append(f"{key}: {e}")
                log.warning("event=corpus_package_skipped package=%s error=%r", key, str(e))
                continue
            for stale in [*folder.glob(f"{key}.jsonl"), *folder.glob(f"{key}-v*.jsonl")]:
                if stale != target:  # texts of an older extraction
                    stale.unlink()
        yield from _jsonl_texts(target)
    if len(errors) == len(keys):
        raise CorpusError("; ".join(errors))


# --- local files and Hugging Face ------------------------------------------------------


def _jsonl_texts(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{lineno}: not JSON ({e.msg})") from None
            text = record.get("text") if isinstance(record, dict) else record
            if isinstance(text, str):
                yield text


def _parquet_texts(path: Path) -> Iterator[str]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    if "text" not in table.schema_arrow.names:
        raise CorpusError(f"{path}: parquet file has no 'text' column")
    for batch in table.iter_batches(columns=["text"]):
        yield from (t for t in batch.column(0).to_pylist() if isinstance(t, str))


def local_documents(path: Path) -> Iterator[str]:
    """Documents of a file or (recursively) a folder, by suffix."""
    if not path.exists():
        raise CorpusError(f"corpus path {path} does not exist")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    usable = [p for p in files if p.suffix in (*TEXT_SUFFIXES, ".jsonl", ".parquet")]
    if not usable:
        raise CorpusError(f"no .txt/.md/.rst/.jsonl/.parquet files under {path}")
    for file in usable:
        if file.suffix == ".jsonl":
            texts: Iterator[str] = _jsonl_texts(file)
        elif file.suffix == ".parquet":
            texts = _parquet_texts(file)
        else:
            texts = iter([unwrap_paragraphs(file.read_text(encoding="utf-8", errors="replace"))])
        for text in texts:
            yield from split_long(text)


def hf_documents(spec: str) -> Iterator[str]:
    """Documents of a Hugging Face dataset ``NAME[:CONFIG][@SPLIT]`` (streamed)."""
    name, _, split = spec.partition("@")
    name, _, config = name.partition(":")
    try:
        import datasets

        stream = datasets.load_dataset(name, config or None, split=split or "train", streaming=True)
        for record in stream:
            text = record.get("text")
            if isinstance(text, str):
                yield from split_long(text)
    except ImportError:
        raise CorpusError("the `datasets` package is needed for hf: sources") from None
    except CorpusError:
        raise
    except Exception as e:  # datasets raises many types when offline
        raise CorpusError(f"Hugging Face dataset {spec!r} is not reachable: {e}") from None


def documents(spec: str) -> Iterator[str]:
    """Documents of one source spec (see module docstring)."""
    if spec == "debian" or spec.startswith("debian:"):
        packages = spec.partition(":")[2]
        return debian_documents([p for p in packages.split(",") if p] or None)
    if spec.startswith("hf:"):
        return hf_documents(spec[3:])
    return local_documents(Path(spec).expanduser())


def describe_failure(specs: list[str], errors: list[str]) -> str:
    tried = "; ".join(f"{s}: {e}" for s, e in zip(specs, errors, strict=True))
    return (
        f"no corpus text could be read (tried {tried}). Point at a local corpus with "
        "`--source PATH` (a folder of .txt/.md/.jsonl/.parquet files), or make the offline "
        "default reachable (`apt-get update` on a Debian-based system)."
    )
