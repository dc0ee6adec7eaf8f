"""Chunking: size bounds, overlap, sections and pages kept, nothing lost (property tests)."""

from __future__ import annotations

import re

from genesys.llm_gateway.knowledge.chunking import ChunkSpec, chunk_blocks
from genesys.llm_gateway.knowledge.readers import Block
from hypothesis import given, settings
from hypothesis import strategies as st

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=30)
SENTENCE = st.lists(WORD, min_size=1, max_size=40).map(lambda ws: " ".join(ws) + ".")
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=8).map(" ".join)
TEXT = st.lists(PARAGRAPH, min_size=1, max_size=6).map("\n\n".join)
SPECS = st.builds(lambda m, o, n: ChunkSpec(m, min(o, m // 2), min(n, m // 2)),
                  st.integers(64, 1500), st.integers(0, 300), st.integers(0, 200))


@settings(max_examples=80, deadline=None)
@given(blocks=st.lists(st.tuples(TEXT, st.sampled_from(["", "A", "A > B", "C"]), st.integers(0, 3)),
                       min_size=1, max_size=5),
       spec=SPECS)
def test_chunks_are_bounded_ordered_and_lose_no_word(blocks, spec):
    chunks = chunk_blocks([Block(text, section, page) for text, section, page in blocks], spec)
    assert all(0 < len(c.text) <= spec.max_chars for c in chunks)
    words = [w for text, _, _ in blocks for w in re.findall(r"[a-z]+", text)]
    chunk_words = [w for c in chunks for w in re.findall(r"[a-z]+", c.text)]
    # every word appears, in order, as a subsequence of the chunks' words (overlap repeats some)
    it = iter(chunk_words)
    assert all(any(w == cw for cw in it) for w in words)
    assert {(c.section, c.page) for c in chunks} <= {(section, page) for _, section, page in blocks}


def test_long_sections_overlap_and_small_ones_join_the_next_block():
    paragraph = " ".join(f"Sentence number {i} talks about gated recurrences." for i in range(60))
    spec = ChunkSpec(max_chars=400, overlap_chars=120, min_chars=80)
    chunks = chunk_blocks([Block("Tiny intro.", "Intro", 1), Block(paragraph, "Intro > Method", 1),
                           Block("Other page text " * 20, "Intro > Method", 2)], spec)
    assert chunks[0].text.startswith("Tiny intro.") and "Method" in chunks[0].text
    assert chunks[0].section == "Intro"  # the small block carried into its successor
    page1 = [c for c in chunks if c.page == 1]
    assert len(page1) > 3 and all(c.page in (1, 2) for c in chunks) and chunks[-1].page == 2
    for before, after in zip(page1, page1[1:], strict=False):
        # the tail of a chunk opens the next one
        assert after.text.split("\n")[0] in before.text and before.text.rsplit("\n", 1)[-1] in after.text
