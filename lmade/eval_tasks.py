"""The offline evaluation suite: lm-eval YAML tasks over JSONL built from held-out text.

Built deterministically (seeded) from the test split's documents, so every design at a
rung is scored on the same items:

- ``genesys_heldout_ppl``   passages scored with loglikelihood_rolling: word/byte
                            perplexity and bits per byte (lower is better).
- ``genesys_cloze``         LAMBADA-style: a passage without its last word; accuracy is
                            whether greedy decoding produces exactly that word.
- ``genesys_nextsent``      HellaSwag-style: a few sentences, then the true next sentence
                            among distractor sentences from other documents (4 choices).

The paper's benchmarks (lambada_openai, hellaswag, ...) are lm-eval's own task names;
they need their data from the Hugging Face hub or its local cache.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

PPL_TASK, CLOZE_TASK, NEXTSENT_TASK = "genesys_heldout_ppl", "genesys_cloze", "genesys_nextsent"
OFFLINE_TASKS = (PPL_TASK, CLOZE_TASK, NEXTSENT_TASK)
N_CHOICES = 4


@dataclass(frozen=True)
class TaskScoring:
    """How a task enters fitness: its primary metric and the score of random guessing."""

    metric: str
    chance: float


# Offline tasks and the paper's benchmarks (REFERENCE.md). Perplexity tasks are reported
# but not part of fitness (they are not accuracies).
SCORING: dict[str, TaskScoring] = {
    CLOZE_TASK: TaskScoring("acc", 0.0),
    NEXTSENT_TASK: TaskScoring("acc_norm", 1 / N_CHOICES),
    "lambada_openai": TaskScoring("acc", 0.0),
    "hellaswag": TaskScoring("acc_norm", 0.25),
    "piqa": TaskScoring("acc_norm", 0.5),
    "arc_easy": TaskScoring("acc_norm", 0.25),
    "arc_challenge": TaskScoring("acc_norm", 0.25),
    "winogrande": TaskScoring("acc", 0.5),
    "openbookqa": TaskScoring("acc_norm", 0.25),
    "sciq": TaskScoring("acc_norm", 0.25),
    "swag": TaskScoring("acc_norm", 0.25),
    "wsc273": TaskScoring("acc", 0.5),
    "mathqa": TaskScoring("acc_norm", 0.2),
    "boolq": TaskScoring("acc", 0.5),
}
PAPER_BENCHMARKS = tuple(k for k in SCORING if not k.startswith("genesys_"))


def _sentences(doc: str) -> list[str]:
    """Sentences of a document, with hard line wraps undone."""
    out = []
    for para in re.split(r"\n\s*\n", doc):
        flat = re.sub(r"\s+", " ", para).strip()
        out += [s for s in re.split(r"(?<=[.!?])\s+(?=[\"'A-Z])", flat) if s]
    return out


def _passages(doc: str, max_chars: int) -> list[str]:
    parts, current = [], ""
    for para in re.split(r"\n\s*\n", doc):
        para = re.sub(r"\s+", " ", para).strip()
        if current and len(current) + len(para) > max_chars:
            parts.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current:
        parts.append(current)
    return [p[:max_chars] for p in parts if len(p) >= 100]


def ppl_items(docs: list[str], n: int, rng: random.Random, max_chars: int = 1500) -> list[dict]:
    pool = [p for d in docs for p in _passages(d, max_chars)]
    return [{"text": t} for t in rng.sample(pool, min(n, len(pool)))]


_LAST_WORD = re.compile(r"^(.*\S)\s+([A-Za-z]{3,})[.!?;:,'\"]*$", re.S)


def cloze_items(docs: list[str], n: int, rng: random.Random) -> list[dict]:
    """Passages of 3-6 consecutive sentences whose final word is a plain word."""
    pool = []
    for doc in docs:
        sents = _sentences(doc)
        for start in range(0, len(sents) - 3, 4):
            passage = " ".join(sents[start : start + rng.randint(3, 6)])
            m = _LAST_WORD.match(passage)
            if m and 150 <= len(passage) <= 1200:
                pool.append({"context": m.group(1), "target": m.group(2)})
    return rng.sample(pool, min(n, len(pool)))


def nextsent_items(docs: list[str], n: int, rng: random.Random) -> list[dict]:
    """Two sentences, then the true third among distractors drawn from other documents."""
    per_doc = [[s for s in _sentences(d) if 20 <= len(s) <= 300] for d in docs]
    if sum(1 for s in per_doc if s) < N_CHOICES:
        return []
    candidates = [(i, j) for i, sents in enumerate(per_doc) for j in range(len(sents) - 2)]
    items = []
    for i, j in rng.sample(candidates, min(n, len(candidates))):
        sents = per_doc[i]
        distractors = []
        while len(distractors) < N_CHOICES - 1:
            k = rng.randrange(len(per_doc))
            if k != i and per_doc[k]:
                distractors.append(rng.choice(per_doc[k]))
        choices = [sents[j + 2], *distractors]
        rng.shuffle(choices)
        items.append(
            {
                "context": f"{sents[j]} {sents[j + 1]}",
                "choices": choices,
                "label": choices.index(sents[j + 2]),
            }
        )
    return items


def _task_yaml(name: str, data_file: Path, body: dict) -> dict:
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        **body,
        "metadata": {"version": 1.0},
    }


TASK_BODIES = {
    PPL_TASK: {
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": "{{text}}",
        "metric_list": [
            {
                "metric": "word_perplexity",
                "aggregation": "weighted_perplexity",
                "higher_is_better": False,
            },
            {
                "metric": "byte_perplexity",
                "aggregation": "weighted_perplexity",
                "higher_is_better": False,
            },
            {"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False},
        ],
    },
    CLOZE_TASK: {
        "output_type": "loglikelihood",
        "doc_to_text": "{{context}}",
        "doc_to_target": "{{' ' + target}}",
        "target_delimiter": "",
        "metric_list": [
            {"metric": "perplexity", "aggregation": "perplexity", "higher_is_better": False},
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
        ],
    },
    NEXTSENT_TASK: {
        "output_type": "multiple_choice",
        "doc_to_text": "{{context}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{label}}",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
    },
}


def build_offline_suite(
    docs: list[str], out_dir: Path, seed: int = 1234, n_items: int = 300
) -> list[str]:
    """Write the three offline tasks (YAML + JSONL) into out_dir; return the task names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    builders = {PPL_TASK: ppl_items, CLOZE_TASK: cloze_items, NEXTSENT_TASK: nextsent_items}
    names = []
    for name, build in builders.items():
        items = build(sorted(docs), n_items, random.Random(f"{seed}:{name}"))
        if not items:
            raise ValueError(f"held-out text is too small to build {name}")
        data_file = (out_dir / f"{name}.jsonl").resolve()
        data_file.write_text("".join(json.dumps(i) + "\n" for i in items))
        spec = _task_yaml(name, data_file, TASK_BODIES[name])
        (out_dir / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        names.append(name)
    return names


def normalised_score(task: str, metrics: dict[str, float]) -> float | None:
    """clip((metric - chance) / (1 - chance), 0, 1) for accuracy tasks, None otherwise."""
    scoring = SCORING.get(task)
    if scoring is None or scoring.metric not in metrics:
        return None
    value = (metrics[scoring.metric] - scoring.chance) / (1 - scoring.chance)
    return min(1.0, max(0.0, value))
