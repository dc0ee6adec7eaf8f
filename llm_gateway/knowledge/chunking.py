"""Blocks -> chunks: at most `max_chars` each, neighbours overlapping by up to `overlap_chars`,
cut at paragraph, then sentence, then word boundaries; never across a section or a page.

Blocks shorter than `min_chars` (a heading with one line under it) are carried into the next
block of the same page, so the index holds no fragments too small to mean anything alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genesys.llm_gateway.knowledge.readers import Block

PARAGRAPH = re.compile(r"\n\s*\n")
SENTENCE = re.compile(r"(?<=[.!?;:])\s+")


@dataclass(frozen=True)
class ChunkSpec:
    max_chars: int = 1200
    overlap_chars: int = 200
    min_chars: int = 120

    def __post_init__(self) -> None:
        if self.max_chars < 64:
            raise ValueError(f"chunk max_chars must be >= 64, got {self.max_chars}")
        if not 0 <= self.overlap_chars <= self.max_chars // 2:
            raise ValueError(f"chunk overlap_chars must be in [0, max_chars/2], got {self.overlap_chars}")
        if not 0 <= self.min_chars <= self.max_chars // 2:
            raise ValueError(f"chunk min_chars must be in [0, max_chars/2], got {self.min_chars}")


@dataclass(frozen=True)
class Chunk:
    text: str
    section: str
    page: int


def _pieces(text: str, limit: int) -> list[str]:
    """Split into pieces of at most `limit` characters at the coarsest boundary that fits."""
    out: list[str] = []
    for paragraph in PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            out.append(paragraph)
            continue
        for sentence in SENTENCE.split(paragraph):
            while len(sentence) > limit:  # one long run: cut at the last space before the limit
                cut = sentence.rfind(" ", 0, limit + 1)
                cut = cut if cut > 0 else limit  # inside a word only when it has no space
                out.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                out.append(sentence)
    return out


def _pack(pieces: list[str], spec: ChunkSpec) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        if current and size + 1 + len(piece) > spec.max_chars:
            chunks.append("\n".join(current))
            # carry the tail of the finished chunk, as far as it fits in the overlap
            carried: list[str] = []
            kept = 0
            for prev in reversed(current):
                if kept + len(prev) + 1 > spec.overlap_chars or kept + len(prev) + 1 + len(piece) > spec.max_chars:
                    break
                carried.insert(0, prev)
                kept += len(prev) + 1
            current, size = carried, kept
        current.append(piece)
        size += len(piece) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks


def chunk_blocks(blocks: list[Block], spec: ChunkSpec) -> list[Chunk]:
    """The chunks of a document's blocks, in document order."""
    out: list[Chunk] = []
    carry: Block | None = None
    for block in blocks:
        text = block.text.strip()
        if not text:
            continue
        if carry is not None and carry.page == block.page:
            heading = block.section.rsplit(" > ", 1)[-1]
            text = f"{carry.text}\n\n{heading}\n\n{text}" if heading else f"{carry.text}\n\n{text}"
            block = Block(text, carry.section, block.page)
        elif carry is not None:
            out.extend(_chunks_of(carry, spec))
        carry = None
        if len(text) < spec.min_chars:
            carry = Block(text, block.section, block.page)
            continue
        out.extend(_chunks_of(Block(text, block.section, block.page), spec))
    if carry is not None:
        out.extend(_chunks_of(carry, spec))
    return out


def _chunks_of(block: Block, spec: ChunkSpec) -> list[Chunk]:
    limit = spec.max_chars - spec.overlap_chars
    return [Chunk(text, block.section, block.page) for text in _pack(_pieces(block.text, limit), spec)]
