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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainer.atomic import staging_dir

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


# --------------------------------------------------------------------------- templates
# A template is (text with {slots}, base difficulty). Fillers are (text, difficulty bump).

_F = dict[str, list[tuple[str, float]]]

_LANGS: list[tuple[str, float]] = [
    ("Python", 0.0),
    ("JavaScript", 0.02),
    ("TypeScript", 0.04),
    ("Go", 0.06),
    ("Rust", 0.12),
    ("Java", 0.03),
    ("C++", 0.12),
    ("C#", 0.04),
    ("Kotlin", 0.05),
    ("SQL", 0.02),
    ("Bash", 0.04),
]
_CODE_EASY = [
    ("reverses a string", 0.0),
    ("checks whether a number is even", 0.0),
    ("returns the largest element of a list", 0.0),
    ("counts the vowels in a sentence", 0.02),
    ("converts Celsius to Fahrenheit", 0.0),
    ("removes duplicates from a list", 0.03),
    ("reads a text file and prints the number of lines", 0.04),
    ("checks whether a word is a palindrome", 0.02),
    ("sums the digits of an integer", 0.02),
    ("formats a date as YYYY-MM-DD", 0.04),
    ("capitalises the first letter of every word", 0.02),
]
_CODE_HARD = [
    ("an LRU cache with O(1) get and put", 0.1),
    ("Dijkstra's shortest path algorithm", 0.1),
    ("a lock-free single-producer single-consumer ring buffer", 0.3),
    ("a trie with prefix search and deletion", 0.12),
    ("an interval tree", 0.2),
    ("a rate limiter using the token bucket algorithm", 0.12),
    ("a parser for arithmetic expressions with operator precedence", 0.18),
    ("consistent hashing with virtual nodes", 0.2),
    ("a B-tree of order 4", 0.28),
    ("a retry decorator with exponential backoff and jitter", 0.08),
    ("the Raft leader election protocol", 0.35),
    ("a bloom filter with a tunable false-positive rate", 0.15),
]
_CODE_CONSTRAINTS = [
    ("no external libraries", 0.02),
    ("full type annotations", 0.02),
    ("thread safety", 0.1),
    ("constant extra memory", 0.1),
    ("property-based tests", 0.08),
    ("clear docstrings", 0.0),
    ("benchmarks for large inputs", 0.06),
]
_CODE_SYMPTOMS = [
    ("throws an IndexError on empty input", 0.05),
    ("deadlocks under load", 0.3),
    ("returns wrong results for negative numbers", 0.1),
    ("leaks memory", 0.25),
    ("is very slow for large inputs", 0.15),
    ("fails only on Windows", 0.2),
]
_SNIPPETS = [
    ("def mean(xs):\n    return sum(xs) / len(xs)", 0.0),
    ("for i in range(len(items)):\n    if items[i] == target:\n        del items[i]", 0.05),
    ("while True:\n    with lock:\n        job = queue.get()\n        process(job)", 0.15),
    ("cache = {}\ndef get(key):\n    cache[key] = load(key)\n    return cache[key]", 0.08),
    ("result = [x for x in data if x > 0][0]", 0.02),
]

_NUMBERS_SMALL = [(str(n), 0.0) for n in (3, 7, 12, 15, 24, 36, 48, 64, 99, 125)]
_NUMBERS_BIG = [(str(n), 0.04) for n in (347, 1289, 4096, 7531, 12345, 98765)]
_FUNCS = [
    ("x^2 + 3x", 0.0),
    ("sin(x) * cos(x)", 0.08),
    ("e^(2x) * ln(x)", 0.15),
    ("x^3 - 4x^2 + 2", 0.03),
    ("1 / (1 + x^2)", 0.1),
    ("sqrt(x) * e^x", 0.12),
]
_THEOREMS = [
    ("there are infinitely many prime numbers", 0.0),
    ("the square root of 2 is irrational", 0.0),
    ("every bounded monotone sequence of reals converges", 0.15),
    ("the sum of the first n odd numbers is n^2", 0.0),
    ("a group of prime order is cyclic", 0.15),
    ("every tree with n nodes has n - 1 edges", 0.05),
    ("the harmonic series diverges", 0.05),
    ("there is no largest even number", -0.05),
]

_TOPICS = [
    ("cats", 0.0),
    ("the weather", 0.0),
    ("coffee", 0.0),
    ("programmers", 0.02),
    ("Mondays", 0.0),
    ("football", 0.0),
    ("space travel", 0.02),
    ("cooking", 0.0),
    ("dinosaurs", 0.0),
    ("office meetings", 0.02),
    ("penguins", 0.0),
    ("video games", 0.0),
]
_MOODS = [
    ("tired", 0.0),
    ("stressed", 0.03),
    ("bored", 0.0),
    ("excited", 0.0),
    ("nervous", 0.03),
    ("homesick", 0.04),
    ("a bit lonely", 0.05),
]
_GREETINGS = [
    ("Hi!", 0.0),
    ("Hello!", 0.0),
    ("Hey there.", 0.0),
    ("Good morning!", 0.0),
    ("Evening!", 0.0),
    ("Yo!", 0.0),
    ("Hiya,", 0.0),
    ("Hello again.", 0.0),
]
_THINGS = [
    ("book", 0.0),
    ("movie", 0.0),
    ("season", 0.0),
    ("city", 0.0),
    ("board game", 0.0),
    ("kind of music", 0.0),
    ("breakfast", 0.0),
]

_LANGUAGES = [
    ("French", 0.0),
    ("Spanish", 0.0),
    ("German", 0.03),
    ("Italian", 0.02),
    ("Portuguese", 0.03),
    ("Japanese", 0.15),
    ("Korean", 0.15),
    ("Mandarin Chinese", 0.15),
    ("Finnish", 0.18),
    ("Polish", 0.1),
    ("Turkish", 0.1),
    ("Dutch", 0.04),
    ("Arabic", 0.15),
    ("Swahili", 0.2),
]
_SENTENCES_EASY = [
    ("Where is the train station?", 0.0),
    ("I would like a cup of coffee, please.", 0.0),
    ("The meeting is postponed until Friday.", 0.02),
    ("My sister lives in a small village.", 0.0),
    ("Could you send me the invoice by email?", 0.03),
    ("It is raining and I forgot my umbrella.", 0.0),
    ("We are open every day except Sunday.", 0.0),
    ("Please turn off the lights when you leave.", 0.0),
    ("How much does this jacket cost?", 0.0),
    ("The children are playing in the garden.", 0.0),
    ("Can I pay by card?", 0.0),
    ("Our flight was delayed by two hours.", 0.02),
    ("I have an appointment with the doctor at nine.", 0.02),
    ("Happy birthday, my friend!", 0.0),
]
_SENTENCES_HARD = [
    (
        "The lessee shall indemnify the lessor against all claims arising from the lessee's "
        "negligence, save where such claims result from the lessor's wilful misconduct.",
        0.25,
    ),
    ("It's raining cats and dogs, so let's not beat around the bush and call it a day.", 0.2),
    (
        "The patient presented with intermittent paroxysmal atrial fibrillation refractory to "
        "beta blockade.",
        0.25,
    ),
    (
        "Notwithstanding the foregoing, neither party shall be liable for consequential damages.",
        0.2,
    ),
    ("Her smile was a lighthouse in the fog of that long, unforgiving winter.", 0.15),
    (
        "The supplier warrants that the goods are free from defects in material and workmanship "
        "for a period of twenty-four months from delivery.",
        0.2,
    ),
    ("He spilled the beans about the surprise party, and now we're back to square one.", 0.2),
    ("Dosage should be titrated to effect, not exceeding the maximum daily threshold.", 0.2),
]

_NAMES = [
    ("Alice", 0.0),
    ("Bob", 0.0),
    ("Chen", 0.0),
    ("Dana", 0.0),
    ("Emeka", 0.0),
    ("Farah", 0.0),
    ("Goran", 0.0),
    ("Hana", 0.0),
]
_CATEGORIES = [
    ("cats", 0.0),
    ("mammals", 0.0),
    ("engineers", 0.0),
    ("squares", 0.0),
    ("rectangles", 0.0),
    ("birds", 0.0),
    ("musicians", 0.0),
    ("blue things", 0.0),
]
_POLICIES = [
    ("a four-day work week", 0.0),
    ("a universal basic income", 0.05),
    ("banning cars in city centres", 0.0),
    ("a carbon tax on aviation", 0.05),
    ("remote-only companies", 0.0),
    ("free public transport", 0.0),
]

_PARAGRAPH_SENTENCES = [
    "The quarterly revenue grew by eight percent, driven mostly by subscriptions.",
    "Operating costs rose faster than expected because of new hiring in support.",
    "The team migrated the billing system to a new provider without downtime.",
    "Customer churn fell slightly after the onboarding flow was redesigned.",
    "Two security incidents were reported, neither of which exposed customer data.",
    "The board approved a budget for expansion into two new regions next year.",
    "Researchers observed that the enzyme's activity doubled at higher temperatures.",
    "The control group showed no significant change over the twelve-week period.",
    "Several participants dropped out, which limits the statistical power of the study.",
    "The city council voted to extend the bicycle lane network by forty kilometres.",
    "Local businesses expressed concern about reduced parking during construction.",
    "The new library branch will open in spring with extended weekend hours.",
    "Engineers traced the outage to a misconfigured load balancer health check.",
    "A rollback restored service within forty minutes of the first alert.",
    "Follow-up actions include better canary analysis and an alert on error budgets.",
]
_AUDIENCES = [
    ("a ten-year-old", 0.05),
    ("busy executives", 0.1),
    ("a technical audience", 0.08),
    ("a tweet", 0.1),
    ("a newsletter", 0.03),
]


@dataclass(frozen=True)
class _Template:
    kind: str
    text: str
    difficulty: float
    slots: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


_TEMPLATES: tuple[_Template, ...] = (
    # code
    _Template(
        "code", "Write a {lang} function that {task}.", 0.08, {"lang": _LANGS, "task": _CODE_EASY}
    ),
    _Template(
        "code",
        "How do I write a function that {task} in {lang}?",
        0.08,
        {"lang": _LANGS, "task": _CODE_EASY},
    ),
    _Template(
        "code",
        "Quick question: in {lang}, what's the idiomatic way to write code that {task}?",
        0.12,
        {"lang": _LANGS, "task": _CODE_EASY},
    ),
    _Template(
        "code",
        "Implement {algo} in {lang} with {constraint}. Explain the time and space "
        "complexity of each operation.",
        0.55,
        {"algo": _CODE_HARD, "lang": _LANGS, "constraint": _CODE_CONSTRAINTS},
    ),
    _Template(
        "code",
        "I need a production-ready implementation of {algo} in {lang}. It must have "
        "{constraint} and handle edge cases carefully. Include tests.",
        0.6,
        {"algo": _CODE_HARD, "lang": _LANGS, "constraint": _CODE_CONSTRAINTS},
    ),
    _Template(
        "code",
        "This {lang} code {symptom}. Find the bug and fix it:\n\n{snippet}",
        0.4,
        {"lang": _LANGS, "symptom": _CODE_SYMPTOMS, "snippet": _SNIPPETS},
    ),
    _Template(
        "code",
        "Review this snippet and suggest improvements for readability and performance:\n{snippet}",
        0.3,
        {"snippet": _SNIPPETS},
    ),
    # math
    _Template("math", "What is {a} + {b}?", 0.0, {"a": _NUMBERS_SMALL, "b": _NUMBERS_BIG}),
    _Template("math", "What is {a} times {b}?", 0.05, {"a": _NUMBERS_SMALL, "b": _NUMBERS_SMALL}),
    _Template("math", "What is {a} percent of {b}?", 0.1, {"a": _NUMBERS_SMALL, "b": _NUMBERS_BIG}),
    _Template(
        "math",
        "Solve for x: {a}x + {b} = {c}. Show your steps.",
        0.2,
        {"a": _NUMBERS_SMALL, "b": _NUMBERS_SMALL, "c": _NUMBERS_BIG},
    ),
    _Template("math", "Find the derivative of f(x) = {f} and simplify it.", 0.35, {"f": _FUNCS}),
    _Template(
        "math",
        "Evaluate the definite integral of {f} from 0 to {a}, giving an exact answer "
        "where possible.",
        0.55,
        {"f": _FUNCS, "a": _NUMBERS_SMALL},
    ),
    _Template("math", "Prove rigorously that {thm}.", 0.6, {"thm": _THEOREMS}),
    _Template(
        "math",
        "A train travels {a} km in {b} minutes. What is its average speed in km/h?",
        0.15,
        {"a": _NUMBERS_BIG, "b": _NUMBERS_SMALL},
    ),
    _Template(
        "math",
        "How many ways can {a} people be seated around a round table if two of them "
        "refuse to sit together?",
        0.65,
        {"a": _NUMBERS_SMALL},
    ),
    # chit-chat
    _Template("chit-chat", "{greet} How is your day going?", 0.0, {"greet": _GREETINGS}),
    _Template(
        "chit-chat",
        "{greet} Tell me a joke about {topic}.",
        0.03,
        {"greet": _GREETINGS, "topic": _TOPICS},
    ),
    _Template("chit-chat", "What's your favourite {thing} and why?", 0.02, {"thing": _THINGS}),
    _Template(
        "chit-chat",
        "{greet} I'm feeling {mood} today. Any advice to cheer me up?",
        0.06,
        {"greet": _GREETINGS, "mood": _MOODS},
    ),
    _Template(
        "chit-chat",
        "Let's just chat for a bit. What do you think about {topic}?",
        0.04,
        {"topic": _TOPICS},
    ),
    _Template(
        "chit-chat",
        "Can you recommend a {thing} for a rainy weekend? I'm {mood}.",
        0.05,
        {"thing": _THINGS, "mood": _MOODS},
    ),
    _Template(
        "chit-chat",
        "Which is better, {topic} or {other}? Be honest!",
        0.03,
        {"topic": _TOPICS, "other": _TOPICS},
    ),
    _Template(
        "chit-chat",
        "{greet} I'm {mood} because of {topic}. Can we talk about it?",
        0.06,
        {"greet": _GREETINGS, "mood": _MOODS, "topic": _TOPICS},
    ),
    _Template(
        "chit-chat", "Write a short, funny limerick about {topic}.", 0.15, {"topic": _TOPICS}
    ),
    # translation
    _Template(
        "translation",
        'Translate into {lang}: "{s}"',
        0.05,
        {"lang": _LANGUAGES, "s": _SENTENCES_EASY},
    ),
    _Template(
        "translation",
        'How do you say "{s}" in {lang}?',
        0.05,
        {"lang": _LANGUAGES, "s": _SENTENCES_EASY},
    ),
    _Template(
        "translation",
        "Translate the following into {lang}, keeping the formal register and "
        'the exact legal meaning: "{s}"',
        0.35,
        {"lang": _LANGUAGES, "s": _SENTENCES_HARD},
    ),
    _Template(
        "translation",
        "Give a natural, idiomatic {lang} translation of this sentence and "
        'explain any idioms you had to adapt: "{s}"',
        0.3,
        {"lang": _LANGUAGES, "s": _SENTENCES_HARD},
    ),
    # reasoning
    _Template(
        "reasoning",
        "All {x} are {y}. Some {y} are {z}. Does it follow that some {x} are {z}? Explain.",
        0.35,
        {"x": _CATEGORIES, "y": _CATEGORIES, "z": _CATEGORIES},
    ),
    _Template(
        "reasoning",
        "{n1} is taller than {n2}, and {n2} is taller than {n3}. Who is the shortest?",
        0.1,
        {"n1": _NAMES, "n2": _NAMES, "n3": _NAMES},
    ),
    _Template(
        "reasoning",
        "What are the likely second-order effects of {policy}? Consider "
        "economic, social and environmental consequences.",
        0.5,
        {"policy": _POLICIES},
    ),
    _Template(
        "reasoning",
        "{n1}, {n2} and {n3} each own a different pet: a cat, a dog and a parrot. "
        "{n1} is allergic to fur. {n2} does not own the dog. Who owns which pet? Reason step "
        "by step.",
        0.55,
        {"n1": _NAMES, "n2": _NAMES, "n3": _NAMES},
    ),
    _Template(
        "reasoning",
        "Steelman both sides of the debate about {policy}, then say which "
        "argument you find stronger and why.",
        0.6,
        {"policy": _POLICIES},
    ),
    _Template(
        "reasoning",
        "If it takes {a} machines {a} minutes to make {a} widgets, how long "
        "would {b} machines take to make {b} widgets?",
        0.45,
        {"a": _NUMBERS_SMALL, "b": _NUMBERS_BIG},
    ),
    # summarisation
    _Template(
        "summarisation", "Summarise the following in one sentence:\n\n{para}", 0.1, {"para": []}
    ),
    _Template(
        "summarisation",
        "Summarise this text for {aud} in three bullet points:\n\n{para}",
        0.25,
        {"para": [], "aud": _AUDIENCES},
    ),
    _Template("summarisation", "TL;DR please:\n{para}", 0.08, {"para": []}),
)


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
    by_kind: dict[str, list[_Template]] = {k: [] for k in KINDS}
    for template in _TEMPLATES:
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


def _fill(template: _Template, rng: random.Random) -> tuple[str, float]:
    values: dict[str, str] = {}
    difficulty = template.difficulty
    for slot, options in template.slots.items():
        if slot == "para":
            count = rng.randint(2, 6)
            sentences = rng.sample(_PARAGRAPH_SENTENCES, count)
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
