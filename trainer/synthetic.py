"""A synthetic routing data set with real structure, written in the LLMRouter format.

Prompts of six kinds (code, math, chit-chat, translation, reasoning, summarisation) are
generated from many templates x fillers, so they vary in wording, topic and length. Each
prompt gets a hidden difficulty in [0, 1] from its template and fillers. Each candidate
model has a skill per kind and a sensitivity to difficulty; its chance of answering a
prompt correctly is ``sigmoid(skill[kind] - sensitivity * difficulty)``, and the label is a
0/1 draw from that chance with a seeded generator. Cheap models are good enough on easy
prompts that a cost-aware router saves money; no single model is best at every kind.

Files written (one directory):

* ``routing_data.jsonl``: one record per (query, model):
  ``{"query", "model_name", "performance", "cost", "query_id", "kind", "difficulty",
  "input_tokens", "output_tokens"}``; ``performance`` is 0.0/1.0 correctness, ``cost`` the
  dollar cost of that call.
* ``dataset.json``: ``{"source", "seed", "prompts", "models"}``, recorded in bundles.
* ``llm_data.json``: the candidates, ``{model_name: {"model", "provider", "service",
  "feature", "size", "input_price", "output_price", "cost_per_million_tokens"}}``; prices
  are dollars per million tokens.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from decision_service.atomic import staging_dir
from trainer.synthetic_fillers import PARAGRAPH_SENTENCES
from trainer.synthetic_templates import TEMPLATES, Template

ROUTING_FILE = "routing_data.jsonl"
LLM_DATA_FILE = "llm_data.json"
DATASET_META = "dataset.json"  # how the data was made: source, seed, sizes

KINDS = ("code", "math", "chit-chat", "translation", "reasoning", "summarisation")


@dataclass(frozen=True)
class SyntheticModel:
    name: str
    provider: str
    price_per_million: float
    feature: str
    size: str
    skill: dict[str, float]  # logit of success on a difficulty-0 prompt, per kind
    sensitivity: float  # how fast the logit falls as difficulty goes 0 -> 1

    def success_probability(self, kind: str, difficulty: float) -> float:
        return 1.0 / (1.0 + math.exp(-(self.skill[kind] - self.sensitivity * difficulty)))


MODELS: tuple[SyntheticModel, ...] = (
    SyntheticModel(
        "gpt-4o",
        "openai",
        10.0,
        "Frontier general model: strong at everything, expensive.",
        "large",
        {
            "code": 3.2,
            "math": 3.0,
            "chit-chat": 3.4,
            "translation": 3.2,
            "reasoning": 3.1,
            "summarisation": 3.3,
        },
        3.0,
    ),
    SyntheticModel(
        "gpt-4o-mini",
        "openai",
        0.6,
        "Small fast model: fine on easy prompts, weak on hard ones.",
        "small",
        {
            "code": 2.6,
            "math": 2.4,
            "chit-chat": 3.4,
            "translation": 2.9,
            "reasoning": 2.3,
            "summarisation": 3.0,
        },
        5.5,
    ),
    SyntheticModel(
        "claude-3-5-sonnet",
        "anthropic",
        9.0,
        "Frontier model, the strongest at code and reasoning.",
        "large",
        {
            "code": 4.4,
            "math": 2.4,
            "chit-chat": 2.9,
            "translation": 2.6,
            "reasoning": 3.8,
            "summarisation": 3.3,
        },
        3.0,
    ),
    SyntheticModel(
        "mistral-small",
        "mistral",
        0.9,
        "Cheap model, good at translation and conversation.",
        "small",
        {
            "code": 0.8,
            "math": 0.2,
            "chit-chat": 3.7,
            "translation": 3.9,
            "reasoning": 0.6,
            "summarisation": 2.6,
        },
        4.5,
    ),
    SyntheticModel(
        "qwen2.5-math-72b",
        "together",
        1.2,
        "Open model tuned for mathematics; weak elsewhere.",
        "medium",
        {
            "code": 1.6,
            "math": 4.4,
            "chit-chat": 1.0,
            "translation": 0.4,
            "reasoning": 2.6,
            "summarisation": 0.8,
        },
        3.0,
    ),
)

# Typical answer length per kind, in tokens: what a call costs beyond the prompt.
_OUTPUT_TOKENS = {
    "code": 420,
    "math": 260,
    "chit-chat": 70,
    "translation": 0,  # about the prompt's own length, computed per prompt
    "reasoning": 320,
    "summarisation": 160,
}


@dataclass(frozen=True)
class SyntheticPrompt:
    query: str
    kind: str
    difficulty: float


@dataclass(frozen=True)
class SyntheticDataset:
    prompts: list[SyntheticPrompt]
    models: tuple[SyntheticModel, ...]
    labels: np.ndarray  # float32 [n_prompts, n_models], 0/1
    seed: int


def generate_prompts(n: int, seed: int) -> list[SyntheticPrompt]:
    """``n`` distinct prompts (distinct even after lower-casing), kinds drawn evenly."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Template]] = {k: [] for k in KINDS}
    for template in TEMPLATES:
        by_kind[template.kind].append(template)
    prompts: list[SyntheticPrompt] = []
    seen: set[str] = set()
    live = list(KINDS)
    misses = dict.fromkeys(KINDS, 0)
    turn = 0
    while len(prompts) < n:
        if not live:
            raise ValueError(f"cannot generate {n} distinct prompts (got {len(prompts)})")
        kind = live[turn % len(live)]
        template = rng.choice(by_kind[kind])
        text, difficulty = _fill(template, rng)
        key = " ".join(text.lower().split())
        if key in seen:
            misses[kind] += 1
            if misses[kind] > 2000:  # this kind's templates are exhausted
                live.remove(kind)
            continue
        turn += 1
        seen.add(key)
        noisy = min(1.0, max(0.0, difficulty + rng.gauss(0.0, 0.07)))
        prompts.append(SyntheticPrompt(text, kind, round(noisy, 4)))
    rng.shuffle(prompts)
    return prompts


def _fill(template: Template, rng: random.Random) -> tuple[str, float]:
    values: dict[str, str] = {}
    difficulty = template.difficulty
    for slot, options in template.slots.items():
        if slot == "para":
            count = rng.randint(2, 6)
            sentences = rng.sample(PARAGRAPH_SENTENCES, count)
            values[slot] = " ".join(sentences)
            difficulty += 0.04 * count
            continue
        text, bump = rng.choice(options)
        values[slot] = text
        difficulty += bump
    return template.text.format(**values), difficulty


def generate(n: int = 2000, seed: int = 7) -> SyntheticDataset:
    prompts = generate_prompts(n, seed)
    rng = np.random.default_rng(seed + 1)
    probabilities = np.array(
        [[m.success_probability(p.kind, p.difficulty) for m in MODELS] for p in prompts],
        dtype=np.float64,
    )
    labels = (rng.random(probabilities.shape) < probabilities).astype(np.float32)
    return SyntheticDataset(prompts=prompts, models=MODELS, labels=labels, seed=seed)


def _approx_tokens(text: str) -> int:
    # ~4 characters per token for English prose: a cost estimate, not the encoder's count.
    return max(1, round(len(text) / 4))


def write_llmrouter(dataset: SyntheticDataset, out_dir: Path) -> Path:
    """Write ``dataset`` in the LLMRouter format to ``out_dir``, atomically."""
    out_dir = Path(out_dir)
    with staging_dir(out_dir) as staging:
        llm_data = {
            m.name: {
                "model": m.name,
                "provider": m.provider,
                "service": m.provider,
                "feature": m.feature,
                "size": m.size,
                "input_price": m.price_per_million,
                "output_price": m.price_per_million,
                "cost_per_million_tokens": m.price_per_million,
            }
            for m in dataset.models
        }
        (staging / LLM_DATA_FILE).write_text(json.dumps(llm_data, indent=2) + "\n")
        meta = {
            "source": "trainer.synthetic",
            "seed": dataset.seed,
            "prompts": len(dataset.prompts),
            "models": [m.name for m in dataset.models],
        }
        (staging / DATASET_META).write_text(json.dumps(meta, indent=2) + "\n")
        with (staging / ROUTING_FILE).open("w", encoding="utf-8") as fh:
            for query_id, prompt in enumerate(dataset.prompts):
                input_tokens = _approx_tokens(prompt.query)
                output_tokens = _OUTPUT_TOKENS[prompt.kind] or round(input_tokens * 1.2)
                for col, model in enumerate(dataset.models):
                    cost = model.price_per_million * (input_tokens + output_tokens) / 1e6
                    record = {
                        "query": prompt.query,
                        "model_name": model.name,
                        "performance": float(dataset.labels[query_id, col]),
                        "cost": round(cost, 8),
                        "query_id": query_id,
                        "kind": prompt.kind,
                        "difficulty": prompt.difficulty,
                        "input_tokens": input_tokens,
                        "output_tokens": output_tokens,
                    }
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return out_dir
