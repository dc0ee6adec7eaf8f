"""A micro GPT trained briefly beats the same model untrained on the offline suite.

Measured on a 2-core CPU (see the issue report): after 300k tokens the likelihood metrics
improve by a wide margin (bits/byte 3.14 -> 2.38, cloze target perplexity 3.2M -> 0.6M),
while the accuracy metrics (cloze exact-word acc, next-sentence acc_norm) do not yet
separate from chance at this budget; this test asserts the likelihood metrics and that
every task reports its accuracy.
"""

from __future__ import annotations

import pytest
import torch
from genesys.lmade import build_lm, seeds
from genesys.lmade.data import PreparedData, PrepareRequest, prepare
from genesys.lmade.eval_tasks import CLOZE_TASK, NEXTSENT_TASK, PPL_TASK
from genesys.lmade.evaluator import evaluate
from genesys.lmade.monitor import MonitorConfig
from genesys.lmade.trainer import TrainConfig, train

TOKENS = 200_000  # ~100 steps of 16 x 128 tokens
ITEMS = 100


@pytest.fixture(scope="module")
def austen(tmp_path_factory) -> PreparedData:
    """Jane Austen's novels (Debian r-cran-janeaustenr), BPE 2048, 5 % held out per split."""
    request = PrepareRequest(
        sources=("debian:r-cran-janeaustenr",), tokenizer="bpe2048", val_frac=0.05, test_frac=0.05
    )
    return PreparedData(prepare(request, out=tmp_path_factory.mktemp("austen")))


@pytest.mark.slow
def test_trained_micro_gpt_beats_untrained_on_the_offline_suite(austen):
    design = seeds.get("gpt")
    config = TrainConfig(
        tokens=TOKENS,
        context=128,
        batch_size=16,
        lr=3e-3,
        eval_every=10**9,
        monitor=MonitorConfig(slowdown_factor=1e6),
    )  # shared CI hosts
    result = train(design, "micro", austen, config)
    assert not result.aborted, result.reason
    assert result.tokens_seen >= TOKENS and result.val_loss < result.loss_curve[0][2]
    torch.manual_seed(config.seed)
    untrained = build_lm(design, "micro", austen.vocab_size)
    untrained.context = 128
    docs = austen.texts("test")
    before = evaluate(untrained, austen.tokenizer, docs, n_items=ITEMS)
    after = evaluate(result.model, austen.tokenizer, docs, n_items=ITEMS)
    assert set(after.tasks) == set(before.tasks) == {PPL_TASK, CLOZE_TASK, NEXTSENT_TASK}
    assert after.tasks[PPL_TASK]["bits_per_byte"] < before.tasks[PPL_TASK]["bits_per_byte"]
    assert after.tasks[CLOZE_TASK]["perplexity"] < before.tasks[CLOZE_TASK]["perplexity"]
    assert "acc" in after.tasks[CLOZE_TASK] and "acc_norm" in after.tasks[NEXTSENT_TASK]
    assert after.fitness is not None and 0.0 <= after.fitness <= 1.0
