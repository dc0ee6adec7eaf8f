"""`genesys kb ...`: the literature index, shared (--address) or embedded (--data-dir)."""

from __future__ import annotations

import functools
import json
import sys

import click

PASSAGE_CHARS = 300


def connection_options(command):
    @click.option("--address", envvar="GENESYS_KB_ADDRESS", default=None,
                  help="Knowledge service host:port (the gateway; env GENESYS_KB_ADDRESS). "
                       "Without it: the embedded index in --data-dir.")
    @click.option("--token", envvar="GENESYS_KB_TOKEN", default=None, help="Bearer token (env GENESYS_KB_TOKEN).")
    @click.option("--tls-ca", envvar="GENESYS_KB_CA_CERT", default=None, type=click.Path(dir_okay=False),
                  help="CA bundle: connect with TLS (env GENESYS_KB_CA_CERT).")
    @click.option("--data-dir", envvar="GENESYS_KB_DATA_DIR", default=None, type=click.Path(file_okay=False),
                  help="Embedded index folder (env GENESYS_KB_DATA_DIR; default: the user's data dir).")
    @functools.wraps(command)
    def wrapper(address, token, tls_ca, data_dir, **kwargs):
        from genesys.client.knowledge import Knowledge, KnowledgeError

        try:
            with Knowledge(address, token=token, data_dir=data_dir, tls_ca=tls_ca) as kb:
                return command(kb, **kwargs)
        except KnowledgeError as exc:
            raise click.ClickException(str(exc)) from exc
    return wrapper


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _dict(message) -> dict:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _status(value: int) -> str:
    from genesys.v1 import knowledge_pb2 as pb

    return pb.IngestStatus.Name(value).removeprefix("INGEST_STATUS_").lower()


@click.command("ingest")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--tag", "tags", multiple=True, help="Tag the documents (repeatable); search can filter on it.")
@click.option("--starter", is_flag=True, help="Also ingest the starter library (architecture notes).")
@json_option
@connection_options
def ingest_cmd(kb, paths: tuple[str, ...], tags: tuple[str, ...], starter: bool, as_json: bool) -> None:
    """Ingest PDF, Markdown, text, LaTeX and Python files (folders: the supported files in them).

    Re-ingesting an unchanged file does nothing; a file that cannot be read is reported by
    name and the others go on (exit code 1 if any failed)."""
    from genesys.client.knowledge import expand_paths
    from genesys.llm_gateway.knowledge import starter_paths
    from genesys.v1 import knowledge_pb2 as pb

    if not paths and not starter:
        raise click.UsageError("give PATH... or --starter")
    batches = [(list(expand_paths(paths)), list(tags))]
    if starter:
        batches.append((starter_paths(), sorted({*tags, "starter"})))
    results = []
    total = sum(len(files) for files, _ in batches)
    with click.progressbar(length=total, label="ingesting", file=sys.stderr,
                           item_show_func=lambda r: r.name.rsplit("/", 1)[-1] if r else "") as bar:
        for files, batch_tags in batches:
            results += kb.ingest(files, tags=batch_tags, on_result=lambda r: bar.update(1, r))
    failed = [r for r in results if r.status == pb.INGEST_STATUS_FAILED]
    if as_json:
        click.echo(json.dumps([_dict(r) for r in results], indent=2))
    else:
        for r in results:
            line = r.error if r.status == pb.INGEST_STATUS_FAILED else f"{r.document_id[:12]}  {r.chunks} chunks"
            click.echo(f"{_status(r.status):9}  {r.name}  {line}")
        added = sum(r.status in (pb.INGEST_STATUS_ADDED, pb.INGEST_STATUS_REPLACED) for r in results)
        click.echo(f"{added} added, {sum(r.status == pb.INGEST_STATUS_UNCHANGED for r in results)} unchanged, "
                   f"{len(failed)} failed", err=True)
    if failed:
        sys.exit(1)


@click.command("search")
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True, help="Passages to return.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
@click.option("--tag", "tags", multiple=True, help="Only documents with any of these tags.")
@click.option("--year-min", type=int, default=None)
@click.option("--year-max", type=int, default=None)
@click.option("--source", "source_prefix", default=None, help="Only documents whose source starts with this.")
@json_option
@connection_options
def search_cmd(kb, query: str, k: int, mode: str, tags: tuple[str, ...], year_min: int | None,
               year_max: int | None, source_prefix: str | None, as_json: bool) -> None:
    """The top-k passages for QUERY (dense + lexical, fused)."""
    import dataclasses

    filters = {"tags": list(tags), "year_min": year_min, "year_max": year_max, "source_prefix": source_prefix}
    passages = kb.search(query, k=k, mode=mode, filter={key: v for key, v in filters.items() if v})
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(p) for p in passages], indent=2))
        return
    for rank, p in enumerate(passages, start=1):
        where = " / ".join(x for x in (p.section, f"p. {p.page}" if p.page else "") if x)
        click.echo(f"{rank}. [{p.score:.4f}] {p.title}" + (f"  ({where})" if where else "") + f"  {p.doc_id[:12]}")
        text = " ".join(p.text.split())
        click.echo(f"   {text[:PASSAGE_CHARS]}{'...' if len(text) > PASSAGE_CHARS else ''}")


@click.command("list")
@click.option("--tag", default="", help="Only documents with this tag.")
@json_option
@connection_options
def list_cmd(kb, tag: str, as_json: bool) -> None:
    """The indexed documents, by title."""
    documents = kb.list_documents(tag=tag)
    if as_json:
        click.echo(json.dumps([_dict(d) for d in documents], indent=2))
        return
    for d in documents:
        tags = ",".join(d.tags) or "-"
        click.echo(f"{d.id[:12]}  {d.year or '----'}  {d.chunks:4d} chunks  [{tags}]  {d.title}")


@click.command("show")
@click.argument("doc")
@json_option
@connection_options
def show_cmd(kb, doc: str, as_json: bool) -> None:
    """A document's metadata and chunks (DOC: its id or a unique prefix)."""
    response = kb.get_document(doc)
    if as_json:
        click.echo(json.dumps(_dict(response), indent=2))
        return
    d = response.document
    click.echo(f"{d.title}\nid: {d.id}\nauthors: {', '.join(d.authors) or '-'}\nyear: {d.year or '-'}\n"
               f"source: {d.source_uri or '-'}\ntype: {d.mime_type}\ntags: {', '.join(d.tags) or '-'}\n"
               f"pages: {d.pages or '-'}\nchunks: {d.chunks}")
    for c in response.chunks:
        where = " / ".join(x for x in (c.section, f"p. {c.page}" if c.page else "") if x)
        click.echo(f"\n--- {c.id}" + (f"  ({where})" if where else "") + f"\n{c.text}")


@click.command("delete")
@click.argument("doc")
@connection_options
def delete_cmd(kb, doc: str) -> None:
    """Delete a document and its chunks (DOC: its id or a unique prefix)."""
    response = kb.delete_document(doc)
    click.echo(f"deleted {response.id} ({response.chunks_deleted} chunks)")


@click.command("stats")
@json_option
@connection_options
def stats_cmd(kb, as_json: bool) -> None:
    """Documents, chunks and proposals in the index; its embedder and backend."""
    stats = kb.stats()
    if as_json:
        click.echo(json.dumps(_dict(stats), indent=2))
        return
    click.echo(f"documents: {stats.documents}\nchunks: {stats.chunks}\nproposals: {stats.proposals}\n"
               f"embedder: {stats.embedder} ({stats.dimension or '?'} dims)\nlexical: {stats.lexical}\n"
               f"backend: {stats.backend}")
