"""Generate the Python stubs for protos/genesys/v1 into clients/python/genesys/v1.

The stubs are committed so that a fresh clone imports without grpcio-tools;
`--check` regenerates into a temporary folder and fails if the committed stubs differ.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "clients" / "python"
PACKAGE = Path("genesys") / "v1"


def generate(out_root: Path) -> list[Path]:
    from grpc_tools import protoc  # dev dependency

    protos = sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))
    if not protos:
        raise SystemExit("no .proto files found")
    include = Path(protoc.__file__).parent / "_proto"
    (out_root / PACKAGE).mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(p.relative_to(PROTO_ROOT)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    init = out_root / PACKAGE / "__init__.py"
    init.write_text('"""Generated gRPC stubs for genesys.v1 (tools/gen_protos.py)."""\n')
    return sorted((out_root / PACKAGE).iterdir())


def stub_names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.suffix in {".py", ".pyi"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed stubs are stale")
    args = parser.parse_args()
    if not args.check:
        target = OUT_ROOT / PACKAGE
        for old in target.glob("*_pb2*.py*"):
            old.unlink()
        generate(OUT_ROOT)
        print(f"generated stubs in {target.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh, committed = Path(tmp) / PACKAGE, OUT_ROOT / PACKAGE
        names = stub_names(fresh) | stub_names(committed)
        stale = sorted(
            n for n in names
            if not (fresh / n).exists() or not (committed / n).exists()
            or not filecmp.cmp(fresh / n, committed / n, shallow=False)
        )
    if stale:
        print("stale generated stubs (run python tools/gen_protos.py):", ", ".join(stale))
        return 1
    print("generated stubs match the protos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
