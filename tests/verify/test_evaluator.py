"""Evaluation: offline suite construction, the lm-eval LM class, fitness, benchmark errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from genesys.lmade import build_lm, seeds
from genesys.lmade.eval_tasks import (
    CLOZE_TASK,
    NEXTSENT_TASK,
    OFFLINE_TASKS,
    build_offline_suite,
    normalised_score,
)
from genesys.lmade.evaluator import BenchmarkUnavailable, GenesysEvalLM, evaluate
from genesys.lmade.scoring import ModelScorer


@pytest.fixture(scope="module")
def tiny_model(tiny_data):
    torch.manual_seed(0)
    model = build_lm(seeds.get("gpt"), "micro", tiny_data.vocab_size)
    model.context = 64
    return model


def test_offline_suite_is_deterministic_and_well_formed(tiny_data, tmp_path):
    docs = tiny_data.texts("test")
    build_offline_suite(docs, tmp_path / "a", seed=5, n_items=50)
    build_offline_suite(list(reversed(docs)), tmp_path / "b", seed=5, n_items=50)
    for name in OFFLINE_TASKS:
        assert (tmp_path / "a" / f"{name}.jsonl").read_text() == (
            tmp_path / "b" / f"{name}.jsonl"
        ).read_text()
    cloze = [
        json.loads(x) for x in (tmp_path / "a" / f"{CLOZE_TASK}.jsonl").read_text().splitlines()
    ]
    assert cloze and all(
        c["target"].isalpha() and re.search(rf"\b{c['target']}\b", c["context"]) for c in cloze
    )
    flat = " ".join(" ".join(d.split()) for d in docs)
    assert all(f"{c['context']} {c['target']}" in flat for c in cloze)
    mc = [
        json.loads(x) for x in (tmp_path / "a" / f"{NEXTSENT_TASK}.jsonl").read_text().splitlines()
    ]
    assert mc and all(len(set(m["choices"])) == 4 and 0 <= m["label"] < 4 for m in mc)
    # the context ends inside a sentence that the labelled ending completes
    assert all(f"{m['context']} {m['choices'][m['label']]}" in flat for m in mc)
    assert all(
        f"{m['context']} {c}" not in flat
        for m in mc
        for c in m["choices"]
        if c != m["choices"][m["label"]]
    )


def test_fitness_normalisation():
    assert normalised_score(NEXTSENT_TASK, {"acc_norm": 0.25}) == 0.0
    assert normalised_score(NEXTSENT_TASK, {"acc_norm": 0.625}) == pytest.approx(0.5)
    assert normalised_score(NEXTSENT_TASK, {"acc_norm": 0.1}) == 0.0  # clipped
    assert normalised_score(CLOZE_TASK, {"acc": 0.3}) == pytest.approx(0.3)
    assert normalised_score("genesys_heldout_ppl", {"bits_per_byte": 2.0}) is None


class _Req:
    def __init__(self, *args):
        self.args = args


def test_lm_scores_agree_between_batched_and_rolling(tiny_data, tiny_model):
    lm = GenesysEvalLM(ModelScorer(tiny_model), tiny_data.tokenizer, batch_size=3,
                       max_length=tiny_model.context)
    text = tiny_data.texts("test")[0][:100]
    (rolling,) = lm.loglikelihood_rolling([_Req(text)])
    ((whole, _),) = lm.loglikelihood([_Req("", text)])
    assert rolling == pytest.approx(whole, rel=1e-4)  # fits in one window: same quantity
    pairs = [_Req(text[:i], text[i : i + 20]) for i in (10, 30, 50, 70)]
    batched = lm.loglikelihood(pairs)
    single = [lm.loglikelihood([p])[0] for p in pairs]
    assert [b[0] for b in batched] == pytest.approx([s[0] for s in single], rel=1e-4)
    (out,) = lm.generate_until([_Req(text[:60], {"until": ["\n"], "max_gen_toks": 8})])
    assert isinstance(out, str) and "\n" not in out


def test_evaluate_offline_suite_reports_raw_metrics_and_fitness(tiny_data, tiny_model):
    result = evaluate(tiny_model, tiny_data.tokenizer, tiny_data.texts("test"), n_items=20)
    assert set(result.tasks) == set(OFFLINE_TASKS)
    assert result.tasks["genesys_heldout_ppl"]["bits_per_byte"] > 0
    assert set(result.normalised) == {CLOZE_TASK, NEXTSENT_TASK}
    assert result.fitness == pytest.approx(sum(result.normalised.values()) / 2)
    # standard errors: closed form for the accuracies, 0 < se <= sqrt(p(1-p)/n) bound
    acc = result.tasks[NEXTSENT_TASK]["acc_norm"]
    se = result.stderr[NEXTSENT_TASK]["acc_norm"]
    assert se == pytest.approx((acc * (1 - acc) / 19) ** 0.5, rel=0.05) or acc in (0, 1)
    assert result.fitness_stderr is not None and result.fitness_stderr >= 0


@pytest.mark.slow  # lm-eval indexes its ~10k bundled task files
def test_paper_benchmark_without_its_data_is_a_clear_error(tiny_data, tiny_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # a fresh interpreter, so that the offline switches are read at import
    code = (
        "import sys, torch\n"
        "from genesys.lmade.evaluator import evaluate, BenchmarkUnavailable\n"
        "from genesys.lmade.data import PreparedData\n"
        "from genesys.lmade import build_lm, seeds\n"
        f"d = PreparedData({str(tiny_data.folder)!r})\n"
        "m = build_lm(seeds.get('gpt'), 'micro', d.vocab_size)\n"
        "try:\n"
        "    evaluate(m, d.tokenizer, d.texts('test'), ['hellaswag'])\n"
        "except BenchmarkUnavailable as e:\n"
        "    print('UNAVAILABLE', e); sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "hellaswag" in proc.stdout and "offline suite" in proc.stdout
    with pytest.raises(BenchmarkUnavailable, match="not an lm-eval task"):
        evaluate(
            tiny_model, tiny_data.tokenizer, tiny_data.texts("test"), ["no_such_benchmark_xyz"]
        )
