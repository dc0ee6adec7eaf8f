"""A DESIGN job in a plain child process: ``python -m genesys.gpu_agent.design_child``.

Runs the designer the payload names (recombination by default, or an LLM designer, which
reaches the gateway at GENESYS_LLM_ADDRESS). Designers only write design source; the
checker runs every candidate in the sandbox (genesys.lmade.checker). Running it here
rather than in the agent keeps
torch (which the checker imports) out of the agent's long-lived parent process. Protocol:
the payload as JSON on stdin; JSON lines on stdout, ``{"event": {...}}`` for progress
and one ``{"result": {...}}`` at the end.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _send(message: dict, out: Any) -> None:
    out.write(json.dumps(message, default=str) + "\n")
    out.flush()


def check_with_lmade(scale: str):
    """A designer `check` callable over genesys.lmade's checker (report with "ok")."""
    from dataclasses import asdict

    from genesys.lmade.checker import check

    def run(design) -> dict:
        report = check(design, scale=scale)
        return {**asdict(report), "ok": bool(report.valid)}

    return run


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol
    payload = json.loads(sys.stdin.read())
    if (payload.get("designer") or "recombination") == "recombination":
        from genesys.designer import design_job
    else:
        from genesys.designer.llm import design_job

    result = design_job(payload, lambda event: _send({"event": event}, out),
                        check=check_with_lmade(payload.get("scale") or "check"))
    _send({"result": result}, out)


if __name__ == "__main__":
    main()
