"""An experiment's runs as TensorBoard event files (tensorboardX), zipped: one run per
design and rung (`<label>-<id>/<rung>`) with the training and validation loss per step, the
benchmark scores and throughput at the last step, so `tensorboard --logdir` can compare
designs for people who prefer that tool."""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from genesys.v1 import design_pb2

from .views import display_name


def run_name(design: design_pb2.Design, rung: str) -> str:
    label = re.sub(r"[^A-Za-z0-9_.+=-]+", "_", display_name(design))[:60]
    return f"{label}-{design.id[:10]}/{rung}"


def write_runs(designs: Iterable[design_pb2.Design], root: Path) -> int:
    """Event files under `root`; returns how many runs were written."""
    from tensorboardX import SummaryWriter

    runs = 0
    for d in designs:
        for r in d.results:
            last = max([p.step for p in (*r.train_curve, *r.val_curve)], default=0)
            with SummaryWriter(logdir=str(root / run_name(d, r.rung))) as w:
                for p in r.train_curve:
                    w.add_scalar("loss/train", p.loss, p.step)
                for p in r.val_curve:
                    w.add_scalar("loss/validation", p.loss, p.step)
                for name, value in sorted(r.metrics.items()):
                    w.add_scalar(f"metrics/{name}", value, last)
                if r.tokens_per_second:
                    w.add_scalar("train/tokens_per_second", r.tokens_per_second, last)
                if r.peak_memory_bytes:
                    w.add_scalar("train/peak_memory_mib", r.peak_memory_bytes / 2**20, last)
                w.add_scalar("fitness", d.fitness, last)
            runs += 1
    return runs


def tensorboard_zip(designs: Iterable[design_pb2.Design]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_runs(designs, root)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                z.write(path, path.relative_to(root).as_posix())
        return out.getvalue()
