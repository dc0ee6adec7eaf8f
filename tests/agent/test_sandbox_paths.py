"""Job dirs where `genesys demo` and agents keep them: inside the source checkout (the
default ./.genesys) must work although the sandbox hides the checkout from the child."""

from __future__ import annotations

import shutil
import uuid

from genesys.gpu_agent.job import AGENT_DIR
from genesys.gpu_agent.sandboxing import Limits, run_sandboxed

CHECKOUT = AGENT_DIR.parent


def test_a_job_dir_inside_the_checkout_is_usable_by_the_sandboxed_child():
    job_dir = CHECKOUT / ".genesys" / f"test-{uuid.uuid4().hex[:8]}" / "jobs" / "j1"
    job_dir.mkdir(parents=True)
    try:
        result = run_sandboxed(
            "genesys.gpu_agent.child:dry_run", {"dry_run_s": 0.2, "out_dir": str(job_dir / "run")},
            Limits(wall_s=60, scratch_dir=str(job_dir), readable_dirs=(str(AGENT_DIR),), threads=1))
        assert result.ok, result.error + result.output_tail[-1000:]
        assert result.value["status"] == "ok"
        assert (job_dir / "run" / "dry-run.json").exists()
    finally:
        shutil.rmtree(job_dir.parents[1], ignore_errors=True)
