"""The multi-GPU code path of a VERIFY job (torchrun over the job's devices), run here on
the CPU: the trusted grader starts the sandboxed worker, whose two ranks train with gloo
inside the sandbox (rank 0 reporting events, the report and the weights), and scores the
trained model itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from genesys.gpu_agent.job import AGENT_DIR
from genesys.gpu_agent.sandboxing import Limits, run_sandboxed

pytestmark = pytest.mark.slow


def test_verify_job_runs_under_torchrun_with_two_ranks(searchable_tmp_path: Path):
    from genesys.lmade import seeds
    from genesys.lmade.data import PrepareRequest, prepare

    data = prepare(PrepareRequest(max_mb=1.0), out=searchable_tmp_path / "data")
    scratch = searchable_tmp_path / "job"
    scratch.mkdir()
    payload = {"design_source": seeds.source("gpt"), "scale": "micro", "tokens": 8192,
               "data_dir": str(data), "out_dir": str(scratch / "run"), "resume": True,
               "eval": {"n_items": 10}, "train": {"device": "cpu", "precision": "fp32"},
               "gpus": 2}
    events: list[dict] = []
    worker = Limits(wall_s=600, scratch_dir=str(scratch), readable_dirs=(str(data), str(AGENT_DIR)),
                    max_file_mb=None, memory_mb=None, threads=1, allow_subprocess=True,
                    local_sockets=True)
    payload.update(worker_limits=worker.to_json(), view_dir=str(searchable_tmp_path / "view"))
    result = run_sandboxed("genesys.gpu_agent.verify_child:grade", payload,
                           Limits(wall_s=900, trusted=True, isolate=False, memory_mb=None),
                           on_event=events.append)
    assert result.ok, result.error + result.output_tail[-2000:]
    value = result.value
    assert value["status"] == "ok", value
    assert value["train"]["world_size"] == 2
    assert set(value["eval"]["normalised"]) == {"genesys_cloze", "genesys_nextsent"}
    assert value["metrics"]["val_loss"] == value["train"]["val_loss"] > 0
    assert not (searchable_tmp_path / "view").exists()  # the training view is removed
    assert [e["event"] for e in events].count("start") == 1  # rank 0 only
