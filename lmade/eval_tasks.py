"""The offline evaluation suite: lm-eval YAML tasks over JSONL built from held-out text.

Built deterministically (seeded) from the test split's documents, so every design at a
rung is scored on the same items:

- ``genesys_heldout_ppl``   passages scored with loglikelihood_rolling: word/byte
                            perplexity and bits per byte (lower is better).
- ``genesys_cloze``         LAMBADA-style: a passage without its last word, a word that
                            occurs earlier in the passage; accuracy is whether greedy
                            decoding produces exactly that word.
- ``genesys_nextsent``      HellaSwag-style: two sentences and the first words of a third;
                            the true ending of the third among endings of sentences from
                            other documents (4 choices, acc_norm).

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
    """Runs of whole paragraphs, verbatim, of up to max_chars (bits/byte of the text as
    the model trained on it)."""
    parts, current = [], ""
    for para in re.split(r"\n\s*\n", doc.strip()):
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


def cloze_items(docs: list[str], n: int, rng: random.Random, max_chars: int = 1000) -> list[dict]:
    """Passages of 3-6 sentences whose final word is a plain word that already occurs
    earlier in the passage.

    LAMBADA keeps passages whose last word needs the whole passage to guess; requiring the
    word to appear in the context is the offline stand-in, so the task rewards models
    that use (and can recall from) their context rather than only local word statistics."""
    pool = []
    for doc in docs:
        sents = _sentences(doc)
        for end in range(2, len(sents)):  # each sentence ends at most one passage
            passage = " ".join(sents[max(0, end + 1 - rng.randint(3, 6)) : end + 1])
            m = _LAST_WORD.match(passage)
            if (
                m
                and 150 <= len(passage) <= max_chars
                and re.search(rf"\b{m.group(2)}\b", m.group(1))
            ):
                pool.append({"context": m.group(1), "target": m.group(2)})
    return rng.sample(pool, min(n, len(pool)))


def _can_end(sentence: str) -> bool:
    return 30 <= len(sentence) <= 300 and sentence.count(" ") >= 5


def _cut(sentence: str, rng: random.Random) -> tuple[str, str]:
    """A sentence of 6+ words split after its first 2-6, leaving at least 4 for the ending."""
    words = sentence.split(" ")
    k = rng.randint(2, min(6, len(words) - 4))
    return " ".join(words[:k]), " ".join(words[k:])


def nextsent_items(docs: list[str], n: int, rng: random.Random) -> list[dict]:
    """Two sentences and the start of a third; the true ending of the third among endings
    of sentences from other documents (HellaSwag's ctx_a + ctx_b -> ending layout)."""
    per_doc = [_sentences(d) for d in docs]
    # distractors are drawn uniformly over all sentences (not per document), so that they
    # come from the same distribution as the true endings
    endings = [(i, s) for i, sents in enumerate(per_doc) for s in sents if _can_end(s)]
    if len({i for i, _ in endings}) < 2:
        return []
    candidates = [
        (i, j)
        for i, sents in enumerate(per_doc)
        for j in range(len(sents) - 2)
        if len(sents[j]) + len(sents[j + 1]) <= 600 and _can_end(sents[j + 2])
    ]
    items = []
    for i, j in rng.sample(candidates, min(n, len(candidates))):
        sents = per_doc[i]
        head, ending = _cut(sents[j + 2], rng)
        choices = [ending]
        for _ in range(50 * N_CHOICES):  # bounded: a tiny held-out set may lack endings
            k, other = rng.choice(endings)
            other = _cut(other, rng)[1]
            if k != i and other not in choices:
                choices.append(other)
            if len(choices) == N_CHOICES:
                break
        else:
            continue
        rng.shuffle(choices)
        items.append(
            {
                "context": f"{sents[j]} {sents[j + 1]} {head}",
                "choices": choices,
                "label": choices.index(ending),
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
