"""What the pages show, from protobuf messages alone (no processes): unit trees, diffs,
check reports, curves, lineage layout, the budget replay, LLM usage, the overview plots,
and the event hub's fan-out."""

from __future__ import annotations

import asyncio
import json

import pytest
from genesys.dashboard import plots, views
from genesys.dashboard.events import EventHub, Subscriber, event_dict
from genesys.v1 import budget_pb2, design_pb2

D = design_pb2


def design(i: int, parents=(), fitness=0.0, rungs=(), label="", tps=0.0) -> D.Design:
    d = D.Design(id=f"d{i}", name=f"n{i}", label=label, fitness=fitness, parents=list(parents),
                 state=D.DESIGN_STATE_VERIFIED if rungs else D.DESIGN_STATE_IMPLEMENTED)
    d.created_at.FromSeconds(1_000 + i)
    for k, rung in enumerate(rungs):
        r = d.results.add(rung=rung, tokens_per_second=tps, peak_memory_bytes=1 << 20)
        r.metrics["acc"] = fitness + 0.01 * k
        r.reported_at.FromSeconds(2_000 + i)
        r.train_curve.add(step=1, loss=3.0)
    return d


def test_unit_tree_marks_planned_units_and_survives_cycles():
    tree = D.GauTree(root="Block", units=[
        D.GauUnit(name="Block", desc="root", children=[D.UnitDecl(name="Attn"), D.UnitDecl(name="Mlp", desc="todo")]),
        D.GauUnit(name="Attn", children=[D.UnitDecl(name="Block")])])
    root = views.unit_tree(tree)
    attn, mlp = root["children"]
    assert (attn["name"], mlp["name"], mlp["planned"], mlp["desc"]) == ("Attn", "Mlp", True, "todo")
    assert attn["children"][0]["name"] == "Block" and attn["children"][0]["children"] == []
    assert views.unit_tree(D.GauTree()) is None


def test_source_diff_and_check_report():
    diff = views.source_diff("a = 1\nb = 2\n", "a = 1\nb = 3\n", "parent", "child")
    assert "--- parent" in diff and "-b = 2" in diff and "+b = 3" in diff
    assert views.check_report("") is None
    assert views.check_report("not json") == {"raw": "not json"}
    assert views.check_report('{"valid": false, "checks": []}')["valid"] is False


def test_result_curves_align_train_and_validation_steps():
    r = D.RungResult(rung="micro", train_curve=[D.CurvePoint(step=s, loss=10 - s) for s in (0, 1, 2)],
                     val_curve=[D.CurvePoint(step=2, loss=7.5), D.CurvePoint(step=4, loss=7.0)])
    curves = views.result_row(r)["curves"]
    assert curves["x"] == [0, 1, 2, 4]
    assert [s["values"] for s in curves["series"]] == [[10, 9, 8, None], [None, None, 7.5, 7.0]]
    assert views.result_row(D.RungResult(rung="micro"))["curves"] is None  # "not recorded"


def test_lineage_graph_layers_by_generation_and_colours_by_fitness():
    designs = [design(0, fitness=0.1, rungs=["micro"]), design(1, fitness=0.9, rungs=["micro"]),
               design(2, ["d0", "d1"], fitness=0.5, rungs=["micro"]), design(3, ["d2"]),
               design(4, ["missing"])]
    graph = views.lineage_graph(designs)
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert [nodes[f"d{i}"]["generation"] for i in range(5)] == [0, 0, 1, 2, 0]
    assert nodes["d0"]["color"] == "#440154" and nodes["d1"]["color"] == "#fde725"
    assert nodes["d3"]["color"] == "#bbbbbb" and not nodes["d3"]["verified"]
    assert sorted(graph["edges"]) == [["d0", "d2"], ["d1", "d2"], ["d2", "d3"]]


def test_ledger_history_replays_oldest_first():
    ops = [(budget_pb2.LEDGER_OP_SET, 4), (budget_pb2.LEDGER_OP_RESERVE, 1),
           (budget_pb2.LEDGER_OP_RESERVE, 1), (budget_pb2.LEDGER_OP_COMMIT, 1),
           (budget_pb2.LEDGER_OP_REFUND, 1)]
    entries = [budget_pb2.LedgerEntry(rung="micro", op=op, amount=n) for op, n in ops]
    for i, e in enumerate(entries):
        e.time.FromSeconds(100 + i)
    series, rows = views.ledger_history(entries[::-1])  # the coordinator's newest-first order
    s = series["micro"]
    assert s["total"] == [4, 4, 4, 4, 4]
    assert s["reserved"] == [0, 1, 2, 1, 0]
    assert s["committed"] == [0, 0, 0, 1, 1]
    assert [r["op"] for r in rows] == ["set", "reserve", "reserve", "commit", "refund"]


def test_llm_usage_per_role_model_and_design():
    d = design(0, label="gpt+retention")
    d.trace.prompts.add(role="coder", model="m1", prompt_tokens=10, completion_tokens=5, latency_seconds=0.5)
    d.trace.prompts.add(role="coder", model="m2", prompt_tokens=20, completion_tokens=1)
    d.trace.prompts.add(role="reviewer", model="m1", prompt_tokens=7, completion_tokens=3)
    usage = views.llm_usage([d, design(1)])
    assert usage["roles"]["coder"] == {"calls": 2, "prompt_tokens": 30, "completion_tokens": 6,
                                       "latency_ms": 500}
    assert usage["models"]["m1"]["calls"] == 2
    assert usage["designs"] == [{"id": "d0", "name": "gpt+retention", "calls": 3,
                                 "prompt_tokens": 37, "completion_tokens": 9}]


def test_overview_plots_pareto_and_rank_correlation():
    designs = [design(i, fitness=f, rungs=["micro", "tiny"], tps=t)
               for i, (f, t) in enumerate([(0.9, 100), (0.5, 300), (0.4, 200), (0.1, 50), (0.7, 90)])]
    out = views.experiment_plots(views.summaries(designs), ["micro", "tiny"])
    pareto = out["pareto"]
    assert pareto["x"] == [50, 90, 100, 200, 300]
    front = [i for i, v in zip(pareto["links"], pareto["series"][1]["values"], strict=True) if v is not None]
    assert sorted(front) == ["d0", "d1"]  # the rest is slower and worse than one of them
    (corr,) = out["rank_correlation"]
    assert (corr["low"], corr["high"], corr["metric"], corr["n"], corr["rho"]) == ("micro", "tiny", "acc", 5, 1.0)
    assert out["fitness_time"]["series"][1]["values"] == [0.9] * 5
    assert views.experiment_plots([], ["micro"])["pareto"] is None


@pytest.mark.parametrize("values, best", [([], []), ([0.2, 0.1, 0.5, 0.4], [0.2, 0.2, 0.5, 0.5]),
                                           ([-1.0, -3.0], [-1.0, -1.0])])
def test_best_so_far_is_the_running_maximum(values, best):
    assert plots.best_so_far(values) == best


def test_event_dict_groups_and_bad_json():
    e = D.Event(seq=3, kind=D.EVENT_KIND_RESULT_REPORTED, experiment="x", data_json="{oops")
    out = event_dict(e)
    assert (out["kind"], out["group"], out["data"]) == ("result_reported", "designs", {"raw": "{oops"})
    assert event_dict(D.Event(kind=D.EVENT_KIND_JOB_PROGRESS))["group"] == "progress"


def test_hub_fans_out_by_experiment_keeps_progress_and_drops_for_slow_readers():
    async def run():
        hub = EventHub(client=None)
        mine, other, everything = hub.subscribe("x"), hub.subscribe("y"), hub.subscribe("")
        progress = event_dict(D.Event(seq=1, kind=D.EVENT_KIND_JOB_PROGRESS, experiment="x", job_id="j",
                                      data_json=json.dumps({"fraction": 0.5})))
        hub.dispatch(progress)
        hub.dispatch(event_dict(D.Event(seq=2, kind=D.EVENT_KIND_WORKER_DEAD)))  # no experiment
        await asyncio.sleep(0)
        assert [mine.queue.get_nowait()["seq"] for _ in range(2)] == [1, 2]
        assert other.queue.get_nowait()["seq"] == 2 and other.queue.empty()
        assert everything.queue.qsize() == 2
        assert hub.progress["j"]["data"]["fraction"] == 0.5
        hub.dispatch(event_dict(D.Event(seq=3, kind=D.EVENT_KIND_JOB_COMPLETED, experiment="x", job_id="j")))
        assert "j" not in hub.progress
        hub.unsubscribe(mine)
        slow = Subscriber("x", asyncio.get_running_loop(), asyncio.Queue(1))
        slow.offer(progress)
        slow.offer(progress)
        assert slow.dropped == 1

    asyncio.run(run())


def test_fault_of_a_failure():
    from genesys.v1 import job_pb2

    assert views.fault(job_pb2.Job(state=job_pb2.JOB_STATE_QUEUED, error="infrastructure: GPU lost")) == "infrastructure"
    assert views.fault(job_pb2.Job(state=job_pb2.JOB_STATE_FAILED, error="NaN")) == "design"
    assert views.fault(job_pb2.Job(state=job_pb2.JOB_STATE_CANCELLED, error="cancelled")) == ""
