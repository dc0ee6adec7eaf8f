"""The lexical score computed by the service, for Milvus backends without the BM25 function
(before 2.5): hashed term vectors, BM25's term-frequency saturation and length
normalisation on the document side, one per distinct term on the query side, so that the
inner product is BM25 without the IDF factor (common words are dropped instead).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

K1, B, AVERAGE_TERMS = 1.2, 0.75, 160.0
TOKEN = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were "
    "what when where which while who will with how does do can".split())
EMPTY = {0: 1e-9}  # Milvus refuses an empty sparse vector; term ids start at 1


def terms(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in STOPWORDS]


def term_id(term: str) -> int:
    return 1 + zlib.crc32(term.encode()) % (2**31 - 2)


def document_vector(text: str) -> dict[int, float]:
    words = terms(text)
    counts = Counter(term_id(t) for t in words)
    norm = K1 * (1 - B + B * len(words) / AVERAGE_TERMS)
    return {i: tf * (K1 + 1) / (tf + norm) for i, tf in counts.items()} or dict(EMPTY)


def query_vector(text: str) -> dict[int, float]:
    return {term_id(t): 1.0 for t in set(terms(text))} or dict(EMPTY)
