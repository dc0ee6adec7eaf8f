"""The tree index in front of the store: selection over its small candidate pools chooses
what it would choose over the whole tree, and large trees are rescored in the background."""

from __future__ import annotations

import random
import time

from genesys.client import Coordinator
from genesys.server import evolution, selection
from genesys.server.tree_index import IndexedStore
from genesys.v1 import design_pb2, experiment_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

LADDER = ["micro", "tiny", "14M"]
STATES = [design_pb2.DESIGN_STATE_PROPOSED, design_pb2.DESIGN_STATE_IMPLEMENTED,
          design_pb2.DESIGN_STATE_VERIFIED, design_pb2.DESIGN_STATE_FAILED]


class Backing:
    """The two reads the index loads a tree with."""

    def __init__(self, designs, busy):
        self.designs, self.busy = designs, busy

    def experiment_designs(self, experiment):
        return self.designs

    def verify_keys(self, experiment):
        return self.busy


@st.composite
def trees(draw):
    designs = []
    for i in range(draw(st.integers(1, 25))):
        d = design_pb2.Design(id=f"d{i:02d}", experiment="e", state=draw(st.sampled_from(STATES)),
                              fitness=draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])),
                              quadrant=draw(st.integers(1, 4)), confidence=draw(st.integers(1, 8)))
        for rung in LADDER[:draw(st.integers(0, 3))]:
            d.results.add(rung=rung, metrics={"piqa": 0.5})
        designs.append(d)
    busy = {(d.id, draw(st.sampled_from(LADDER))) for d in designs if draw(st.booleans())}
    open_rungs = draw(st.lists(st.sampled_from(LADDER), min_size=1, unique=True))
    return designs, busy, open_rungs, draw(st.integers(0, 2**31))


@settings(max_examples=300, deadline=None)
@given(trees())
def test_verify_pool_chooses_what_the_whole_tree_would(tree):
    designs, busy, open_rungs, seed = tree
    config = experiment_pb2.ExperimentConfig()
    for name in LADDER:
        config.ladder.rungs.add(name=name)
    config.selection.p_explore, config.selection.noise = 0.2, 0.05
    index = IndexedStore(Backing(designs, busy))
    pool = index.verify_pool("e", LADDER[0], LADDER[0] in open_rungs)
    assert len(pool) <= max(1, sum(1 for d in designs if d.results))
    for _ in range(2):  # twice: the cursor moved on, the choice stays
        whole = selection.choose_verify_target(designs, config, open_rungs, busy,
                                               random.Random(seed))
        picked = selection.choose_verify_target(pool, config, open_rungs, busy,
                                                random.Random(seed))
        assert (whole and (whole.design.id, whole.rung)) == (picked and (picked.design.id,
                                                                         picked.rung))
        pool = index.verify_pool("e", LADDER[0], LADDER[0] in open_rungs)


def test_large_trees_are_rescored_in_the_background(make_server, monkeypatch):
    monkeypatch.setattr(evolution, "SYNC_RESCORE_DESIGNS", 0)
    server = make_server()
    with Coordinator(server.address, server.token, retries=1) as admin:
        admin.create_experiment("big", ladder="micro:5", seeds=("gpt", "retnet", "ttt"))
        ids = [d.id for d in admin.list_designs("big")]
        for i, design_id in enumerate(ids):
            admin.report_result(design_id, "micro", {"piqa": 0.55 + 0.05 * i})
        deadline = time.monotonic() + 10
        while [e.design_id for e in admin.leaderboard("big")[:3]] != ids[::-1]:
            assert time.monotonic() < deadline, "the background rescore never ran"
            time.sleep(0.1)
        assert admin.leaderboard("big")[0].fitness > 0.9
