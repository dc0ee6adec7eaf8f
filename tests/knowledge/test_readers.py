"""Readers: each format's title, authors, year, sections and pages; clear errors for bad files."""

from __future__ import annotations

import io

import pytest
from genesys.llm_gateway.knowledge.readers import ReadError, mime_type_of, read

MARKDOWN = b"""---
title: A note
authors: Ada Lovelace; Alan Turing
year: 2021
tags: ssm, seed
---
# Ignored as title (front matter wins)

Intro text.

## Method

```python
# not a heading inside a fence
```

### Detail

Deep text.
"""


def test_markdown_front_matter_and_heading_paths():
    parsed = read(MARKDOWN, "text/markdown")
    assert (parsed.title, parsed.authors, parsed.year, parsed.tags) == (
        "A note", ["Ada Lovelace", "Alan Turing"], 2021, ["ssm", "seed"])
    sections = [b.section for b in parsed.blocks]
    assert sections == ["Ignored as title (front matter wins)", "Ignored as title (front matter wins) > Method",
                        "Ignored as title (front matter wins) > Method > Detail"]
    assert "# not a heading" in parsed.blocks[1].text


def test_latex_title_authors_abstract_and_sections():
    source = rb"""\documentclass{article}
\title{Gated \textbf{Things}}
\author{Ann One \and Bob Two}
\date{March 2022}
\begin{document}\maketitle
\begin{abstract}We gate things.\end{abstract}
\section{Introduction} Intro \cite{x} text. % a comment
\subsection{Setup} Setup text with $h_t = a h_{t-1}$.
\section{Results} Results text.
\end{document}"""
    parsed = read(source, "text/x-tex")
    assert parsed.title == "Gated Things" and parsed.authors == ["Ann One", "Bob Two"] and parsed.year == 2022
    by_section = {b.section: b.text.strip() for b in parsed.blocks if b.text.strip()}
    assert by_section["Abstract"] == "We gate things."
    assert by_section["Introduction"] == "Intro  text."
    assert "h_t = a h_{t-1}" in by_section["Introduction > Setup"]
    assert by_section["Results"] == "Results text."


def test_python_docstring_and_definitions():
    source = b'"""Gated unit.\n\nMore words."""\nimport os\n\nclass Unit:\n    pass\n\ndef helper(x):\n    return x\n'
    parsed = read(source, "text/x-python")
    assert parsed.title == "Gated unit."
    assert [b.section for b in parsed.blocks] == ["module docstring", "class Unit", "def helper"]
    with pytest.raises(ReadError, match="not valid Python"):
        read(b"def broken(:\n", "text/x-python")


def test_pdf_pages_and_numbered_headings():
    matplotlib = pytest.importorskip("matplotlib", reason="the PDF is written with matplotlib (report extra)")
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with plt.rc_context({"pdf.fonttype": 42}), PdfPages(buffer, metadata={"Title": "Paper", "Author": "A. B, C. D"}) as pdf:
        for text in ("1 Introduction\nFirst page words.", "2 Method\nSecond page words."):
            fig = plt.figure(figsize=(8.5, 11))
            fig.text(0.1, 0.8, text)
            pdf.savefig(fig)
            plt.close(fig)
    parsed = read(buffer.getvalue(), "application/pdf")
    assert (parsed.title, parsed.authors, parsed.pages) == ("Paper", ["A. B", "C. D"], 2)
    blocks = [(b.section, b.page, b.text.strip()) for b in parsed.blocks]
    assert ("1 Introduction", 1, "First page words.") in blocks
    assert ("2 Method", 2, "Second page words.") in blocks


@pytest.mark.parametrize("content, mime, message", [
    (b"", "text/markdown", "empty"),
    (b"   \n\n", "text/plain", "empty"),
    (b"%PDF-1.4 not really", "application/pdf", "not a readable PDF"),
    (b"\x00\x01binary", "text/plain", "binary content"),
    (b"\xff\xfe\xfa bad", "text/markdown", "not UTF-8"),
    (b"---\ntitle: only\n---\n", "text/markdown", "no text"),
])
def test_bad_content_is_a_read_error_saying_why(content, mime, message):
    with pytest.raises(ReadError, match=message):
        read(content, mime)


def test_types_from_extension_or_declared():
    assert mime_type_of("paper.PDF") == "application/pdf"
    assert mime_type_of("notes.md") == "text/markdown"
    assert mime_type_of("x.bin", "text/plain") == "text/plain"
    with pytest.raises(ReadError, match="unsupported file type '.docx'"):
        mime_type_of("report.docx")
    with pytest.raises(ReadError, match="unsupported type"):
        mime_type_of("x.md", "application/zip")
