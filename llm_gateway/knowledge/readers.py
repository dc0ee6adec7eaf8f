"""File bytes -> a document's title, authors, year and its text as sectioned, paged blocks.

One reader per format (PDF through pypdf's text layer, Markdown, plain text, LaTeX source,
Python). A file that cannot be read raises ReadError with a message saying why; the caller
reports it by the file's name.
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath

MIME_BY_SUFFIX = {
    ".pdf": "application/pdf",
    ".md": "text/markdown", ".markdown": "text/markdown",
    ".txt": "text/plain", ".text": "text/plain", ".rst": "text/plain",
    ".tex": "text/x-tex", ".latex": "text/x-tex",
    ".py": "text/x-python",
}


class ReadError(ValueError):
    """The content cannot be turned into text (corrupt, empty, unsupported)."""


@dataclass
class Block:
    text: str
    section: str = ""  # heading path, "Mamba > Selective scan"
    page: int = 0  # 1-based; 0 for formats without pages


@dataclass
class Parsed:
    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: int = 0
    tags: list[str] = field(default_factory=list)
    pages: int = 0
    blocks: list[Block] = field(default_factory=list)


def mime_type_of(filename: str, given: str = "") -> str:
    """The declared type, else the one of the file name's extension; ReadError if unknown."""
    if given:
        if given not in MIME_BY_SUFFIX.values():
            raise ReadError(f"unsupported type {given!r} (supported: {', '.join(sorted(set(MIME_BY_SUFFIX.values())))})")
        return given
    suffix = PurePath(filename).suffix.lower()
    if suffix not in MIME_BY_SUFFIX:
        raise ReadError(f"unsupported file type {suffix or '(no extension)'!r} "
                        f"(supported: {', '.join(sorted(MIME_BY_SUFFIX))})")
    return MIME_BY_SUFFIX[suffix]


def read(content: bytes, mime_type: str) -> Parsed:
    """Parse `content` of a supported type; raise ReadError when nothing readable is in it."""
    if not content.strip():
        raise ReadError("the file is empty")
    parsed = READERS[mime_type](content)
    parsed.blocks = [b for b in parsed.blocks if b.text.strip()]
    if not parsed.blocks:
        raise ReadError("no text found in it")
    return parsed


def _decode(content: bytes) -> str:
    if b"\x00" in content[:8192]:
        raise ReadError("binary content where text was expected")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


# -- Markdown --------------------------------------------------------------------------------

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """`key: value` lines between leading `---` fences (the subset the starter notes use)."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end < 0:
        return {}, text
    meta = {}
    for line in text[4:end].splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip().strip('"')
    return meta, text[end + 4:].lstrip("-").lstrip("\n")


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[;,]|\band\b", value.strip("[]")) if v.strip()]


def _year(value: str) -> int:
    match = re.search(r"\b(19|20)\d\d\b", value)
    return int(match.group()) if match else 0


def read_markdown(content: bytes) -> Parsed:
    meta, body = _front_matter(_decode(content))
    parsed = Parsed(title=meta.get("title", ""), authors=_split_list(meta.get("authors", "")),
                    year=_year(meta.get("year", "")), tags=_split_list(meta.get("tags", "")))
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        parsed.blocks.append(Block("\n".join(lines).strip(), " > ".join(t for _, t in path)))
        lines.clear()

    for line in body.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else HEADING.match(line)
        if heading is None:
            lines.append(line)
            continue
        flush()
        level, title = len(heading.group(1)), heading.group(2)
        if level == 1 and not parsed.title:
            parsed.title = title
        path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
    flush()
    return parsed


# -- plain text ------------------------------------------------------------------------------

def read_text(content: bytes) -> Parsed:
    text = _decode(content)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return Parsed(title=first if len(first) <= 120 else "", blocks=[Block(text)])


# -- PDF -------------------------------------------------------------------------------------

# A numbered heading line of a paper: "3 Method", "2.1 Selective scan", "A.2 Proofs".
PDF_HEADING = re.compile(r"^(?:\d+(?:\.\d+){0,2}|[A-H](?:\.\d+){1,2})\.?\s+[A-Z][^.!?]{1,80}$")


def read_pdf(content: bytes) -> Parsed:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(content))
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ReadError(f"not a readable PDF: {exc}") from exc
    if not any(p.strip() for p in pages):
        raise ReadError(f"no text layer in its {len(pages)} page(s) (a scanned PDF needs OCR first)")
    title = (info.title if info else None) or ""
    authors = _split_list(info.author) if info and info.author else []
    parsed = Parsed(title=title.strip(), authors=authors, pages=len(pages))
    section = ""
    for number, page_text in enumerate(pages, start=1):
        lines: list[str] = []
        for line in page_text.splitlines():
            if PDF_HEADING.match(line.strip()):
                parsed.blocks.append(Block("\n".join(lines), section, number))
                lines, section = [], line.strip()
            else:
                lines.append(line)
        parsed.blocks.append(Block("\n".join(lines), section, number))
    if not parsed.title:
        parsed.title = next((line.strip() for line in pages[0].splitlines() if line.strip()), "")[:200]
    return parsed


# -- LaTeX -----------------------------------------------------------------------------------

TEX_SECTION = re.compile(r"\\(section|subsection|subsubsection)\*?\{([^{}]*)\}")
TEX_COMMENT = re.compile(r"(?<!\\)%.*")
TEX_DROP = re.compile(r"\\(?:label|cite[tp]?|ref|eqref|vspace|hspace|includegraphics)\*?(?:\[[^\]]*\])?\{[^{}]*\}")
TEX_UNWRAP = re.compile(r"\\(?:textbf|textit|emph|texttt|mathrm|text|url)\{([^{}]*)\}")
TEX_ENV = re.compile(r"\\(?:begin|end)\{(?:itemize|enumerate|center|figure\*?|table\*?)\}(?:\[[^\]]*\])?")


def _tex_arg(source: str, command: str) -> str:
    match = re.search(rf"\\{command}(?:\[[^\]]*\])?\{{((?:[^{{}}]|\{{[^{{}}]*\}})*)\}}", source)
    return re.sub(r"\s+", " ", TEX_UNWRAP.sub(r"\1", match.group(1))).strip() if match else ""


def _tex_clean(text: str) -> str:
    text = TEX_DROP.sub("", text)
    text = TEX_UNWRAP.sub(r"\1", text)
    text = TEX_ENV.sub("", text)
    return text.replace("\\item", "-").replace("~", " ")


def read_latex(content: bytes) -> Parsed:
    source = "\n".join(TEX_COMMENT.sub("", line) for line in _decode(content).splitlines())
    parsed = Parsed(title=_tex_arg(source, "title"),
                    authors=_split_list(_tex_arg(source, "author").replace("\\\\", ",").replace("\\and", ",")),
                    year=_year(_tex_arg(source, "date")))
    begin = source.find("\\begin{document}")
    body = source[begin + len("\\begin{document}"):] if begin >= 0 else source
    body = body.split("\\end{document}")[0]
    abstract = re.search(r"\\begin\{abstract\}(.*?)\\end\{abstract\}", body, re.S)
    if abstract:
        parsed.blocks.append(Block(_tex_clean(abstract.group(1)), "Abstract"))
        body = body[:abstract.start()] + body[abstract.end():]
    body = re.sub(r"\\maketitle", "", body)
    path: dict[str, str] = {}
    last = 0
    section = ""
    for match in TEX_SECTION.finditer(body):
        parsed.blocks.append(Block(_tex_clean(body[last:match.start()]), section))
        level, name = match.group(1), match.group(2).strip()
        path = {k: v for k, v in path.items() if k.count("sub") < level.count("sub")}
        path[level] = name
        section = " > ".join(path[k] for k in sorted(path, key=lambda k: k.count("sub")))
        last = match.end()
    parsed.blocks.append(Block(_tex_clean(body[last:]), section))
    return parsed


# -- Python ----------------------------------------------------------------------------------

def read_python(content: bytes) -> Parsed:
    source = _decode(content)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ReadError(f"not valid Python (line {exc.lineno}: {exc.msg})") from exc
    doc = ast.get_docstring(tree) or ""
    parsed = Parsed(title=doc.strip().splitlines()[0] if doc.strip() else "")
    if doc:
        parsed.blocks.append(Block(doc, "module docstring"))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            parsed.blocks.append(Block(ast.get_source_segment(source, node) or "", f"{kind} {node.name}"))
    if len(parsed.blocks) <= (1 if doc else 0):  # a script without definitions: all of it
        parsed.blocks.append(Block(source, ""))
    return parsed


READERS: dict[str, Callable[[bytes], Parsed]] = {
    "application/pdf": read_pdf,
    "text/markdown": read_markdown,
    "text/plain": read_text,
    "text/x-tex": read_latex,
    "text/x-python": read_python,
}
