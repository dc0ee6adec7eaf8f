"""`genesys verify` and `genesys data prepare|info`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _print_event(event: dict) -> None:
    kind = event.get("event")
    if kind in ("progress", "eval", "abort", "done", "oom", "evaluate", "start"):
        fields = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in event.items()
        )
        click.echo(fields, err=True)


@click.command("verify")
@click.argument("design")
@click.option(
    "--scale", default="micro", show_default=True, help="Rung of the ladder (genesys.lmade.SCALES)."
)
@click.option("--tokens", type=int, help="Token budget (default: the scale's).")
@click.option(
    "--data", "data_dir", type=click.Path(), help="Prepared dataset (default: the offline corpus)."
)
@click.option("--out", "out_dir", type=click.Path(), help="Checkpoints and result.json.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--benchmarks",
    default="offline",
    show_default=True,
    help="Comma-separated lm-eval task names; 'offline' = the held-out suite.",
)
@click.option("--context", type=int, help="Sequence length (default: the scale's).")
@click.option("--batch-size", type=int, help="Sequences per step (default: the scale's).")
@click.option(
    "--precision", type=click.Choice(["auto", "bf16", "fp32"]), default="auto", show_default=True
)
@click.option(
    "--eval-items", type=int, default=300, show_default=True, help="Items per offline task."
)
@click.option("--no-check", is_flag=True, help="Skip the checker.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_cmd(
    design,
    scale,
    tokens,
    data_dir,
    out_dir,
    resume,
    seed,
    benchmarks,
    context,
    batch_size,
    precision,
    eval_items,
    no_check,
    as_json,
) -> None:
    """Check, pre-train and evaluate DESIGN (a design file or a seed name) at a scale."""
    from genesys.lmade.corpus import CorpusError
    from genesys.lmade.data import DataError
    from genesys.lmade.eval_tasks import OFFLINE_TASKS
    from genesys.lmade.scales import SCALES
    from genesys.lmade.verify import verify

    if scale not in SCALES:
        raise click.UsageError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    names: list[str] = []
    for name in benchmarks.split(","):
        names += list(OFFLINE_TASKS) if name.strip() == "offline" else [name.strip()]
    train = {
        k: v
        for k, v in {"context": context, "batch_size": batch_size, "precision": precision}.items()
        if v is not None
    }
    try:
        result = verify(
            design,
            scale,
            tokens=tokens,
            data_dir=data_dir,
            out_dir=out_dir,
            resume=resume,
            seed=seed,
            benchmarks=names,
            train=train,
            eval={"n_items": eval_items},
            check=not no_check,
            on_event=None if as_json else _print_event,
        )
    except FileNotFoundError as e:
        raise click.UsageError(str(e)) from None
    except (DataError, CorpusError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        train_part = result.get("train") or {}
        click.echo(
            f"design={result['design']} scale={result['scale']} status={result['status']} "
            f"fitness={result.get('fitness')} train_loss={train_part.get('train_loss')} "
            f"val_loss={train_part.get('val_loss')} tokens/s={train_part.get('tokens_per_s')} "
            f"result={result['out_dir']}/result.json"
        )
        for task, metrics in ((result.get("eval") or {}).get("tasks") or {}).items():
            click.echo(f"  {task}: " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        if result.get("reason"):
            click.echo(f"reason: {result['reason']}")
    sys.exit(0 if result["status"] == "ok" else 1)


@click.command("prepare")
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="debian | debian:PKG,PKG | PATH (txt/md/jsonl/parquet) | hf:NAME[:CONFIG][@SPLIT]; repeatable.",
)
@click.option(
    "--tokenizer",
    default="bpe8k",
    show_default=True,
    help="bpe8k / bpeN (trained here), gpt2, or a HF tokenizer name or tokenizer.json path.",
)
@click.option(
    "--out", "out_dir", type=click.Path(), help="Output folder (default: a cache folder)."
)
@click.option("--max-mb", type=float, help="Read at most this many MB of text.")
@click.option("--val-frac", type=float, default=0.03, show_default=True)
@click.option("--test-frac", type=float, default=0.03, show_default=True)
@click.option("--force", is_flag=True, help="Rebuild even if OUT holds the same build.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def prepare_cmd(sources, tokenizer, out_dir, max_mb, val_frac, test_frac, force, as_json) -> None:
    """Build tokenised train/val/test shards with a manifest.

    Hard-wrapped prose paragraphs (Debian texts, .txt/.md/.rst files) are joined into one
    line each, as the evaluation passages are; code, lists and tables keep their lines."""
    from genesys.lmade.corpus import CorpusError
    from genesys.lmade.data import DEFAULT_SOURCES, PreparedData, PrepareRequest, prepare
    from genesys.lmade.tokenizer import TokenizerError

    if not 0 < val_frac < 0.5 or not 0 < test_frac < 0.5:
        raise click.UsageError("--val-frac and --test-frac must be in (0, 0.5)")
    request = PrepareRequest(
        tuple(sources) or DEFAULT_SOURCES, tokenizer, max_mb, val_frac, test_frac
    )
    try:
        out = prepare(
            request,
            Path(out_dir) if out_dir else None,
            force=force,
            on_progress=None if as_json else lambda m: click.echo(m, err=True),
        )
    except (CorpusError, TokenizerError) as e:
        raise click.ClickException(str(e)) from None
    _show(PreparedData(out), as_json)


@click.command("info")
@click.argument("folder", type=click.Path())
@click.option("--verify", "check", is_flag=True, help="Also recompute checksums.")
@click.option("--json", "as_json", is_flag=True)
def info_cmd(folder, check, as_json) -> None:
    """Show a prepared dataset's manifest summary."""
    from genesys.lmade.data import DataError, PreparedData

    try:
        data = PreparedData(folder)
    except DataError as e:
        raise click.ClickException(str(e)) from None
    bad = data.verify_checksums() if check else []
    _show(data, as_json)
    if bad:
        raise click.ClickException(f"checksum mismatch: {', '.join(bad)}")


def _show(data, as_json: bool) -> None:
    m = data.manifest
    if as_json:
        click.echo(json.dumps({"dir": str(data.folder), **m}, indent=2))
        return
    tok = m["tokenizer"]
    click.echo(
        f"dir={data.folder} tokenizer={tok['name']} vocab={tok['vocab_size']} dtype={m['dtype']}"
    )
    for split, entry in m["splits"].items():
        click.echo(
            f"  {split}: docs={entry['docs']} tokens={entry['tokens']} bytes={entry['bytes']}"
        )
