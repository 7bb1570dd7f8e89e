"""Prompt templates for the synthetic data set (``trainer.synthetic``).

Data, not logic: a template is (text with {slots}, base difficulty) whose slots draw from
the fillers in ``trainer.synthetic_fillers``. Kept apart so the generator stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.synthetic_fillers import (
    AUDIENCES,
    CATEGORIES,
    CODE_CONSTRAINTS,
    CODE_EASY,
    CODE_HARD,
    CODE_SYMPTOMS,
    FUNCS,
    GREETINGS,
    LANGS,
    LANGUAGES,
    MOODS,
    NAMES,
    NUMBERS_BIG,
    NUMBERS_SMALL,
    POLICIES,
    SENTENCES_EASY,
    SENTENCES_HARD,
    SNIPPETS,
    THEOREMS,
    THINGS,
    TOPICS,
)


@dataclass(frozen=True)
class Template:
    kind: str
    text: str
    difficulty: float
    slots: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


TEMPLATES: tuple[Template, ...] = (
    # code
    Template(
        "code", "Write a {lang} function that {task}.", 0.08, {"lang": LANGS, "task": CODE_EASY}
    ),
    Template(
        "code",
        "How do I write a function that {task} in {lang}?",
        0.08,
        {"lang": LANGS, "task": CODE_EASY},
    ),
    Template(
        "code",
        "Quick question: in {lang}, what's the idiomatic way to write code that {task}?",
        0.12,
        {"lang": LANGS, "task": CODE_EASY},
    ),
    Template(
        "code",
        "Implement {algo} in {lang} with {constraint}. Explain the time and space "
        "complexity of each operation.",
        0.55,
        {"algo": CODE_HARD, "lang": LANGS, "constraint": CODE_CONSTRAINTS},
    ),
    Template(
        "code",
        "I need a production-ready implementation of {algo} in {lang}. It must have "
        "{constraint} and handle edge cases carefully. Include tests.",
        0.6,
        {"algo": CODE_HARD, "lang": LANGS, "constraint": CODE_CONSTRAINTS},
    ),
    Template(
        "code",
        "This {lang} code {symptom}. Find the bug and fix it:\n\n{snippet}",
        0.4,
        {"lang": LANGS, "symptom": CODE_SYMPTOMS, "snippet": SNIPPETS},
    ),
    Template(
        "code",
        "Review this snippet and suggest improvements for readability and performance:\n{snippet}",
        0.3,
        {"snippet": SNIPPETS},
    ),
    # math
    Template("math", "What is {a} + {b}?", 0.0, {"a": NUMBERS_SMALL, "b": NUMBERS_BIG}),
    Template("math", "What is {a} times {b}?", 0.05, {"a": NUMBERS_SMALL, "b": NUMBERS_SMALL}),
    Template("math", "What is {a} percent of {b}?", 0.1, {"a": NUMBERS_SMALL, "b": NUMBERS_BIG}),
    Template(
        "math",
        "Solve for x: {a}x + {b} = {c}. Show your steps.",
        0.2,
        {"a": NUMBERS_SMALL, "b": NUMBERS_SMALL, "c": NUMBERS_BIG},
    ),
    Template("math", "Find the derivative of f(x) = {f} and simplify it.", 0.35, {"f": FUNCS}),
    Template(
        "math",
        "Evaluate the definite integral of {f} from 0 to {a}, giving an exact answer "
        "where possible.",
        0.55,
        {"f": FUNCS, "a": NUMBERS_SMALL},
    ),
    Template("math", "Prove rigorously that {thm}.", 0.6, {"thm": THEOREMS}),
    Template(
        "math",
        "A train travels {a} km in {b} minutes. What is its average speed in km/h?",
        0.15,
        {"a": NUMBERS_BIG, "b": NUMBERS_SMALL},
    ),
    Template(
        "math",
        "How many ways can {a} people be seated around a round table if two of them "
        "refuse to sit together?",
        0.65,
        {"a": NUMBERS_SMALL},
    ),
    # chit-chat
    Template("chit-chat", "{greet} How is your day going?", 0.0, {"greet": GREETINGS}),
    Template(
        "chit-chat",
        "{greet} Tell me a joke about {topic}.",
        0.03,
        {"greet": GREETINGS, "topic": TOPICS},
    ),
    Template("chit-chat", "What's your favourite {thing} and why?", 0.02, {"thing": THINGS}),
    Template(
        "chit-chat",
        "{greet} I'm feeling {mood} today. Any advice to cheer me up?",
        0.06,
        {"greet": GREETINGS, "mood": MOODS},
    ),
    Template(
        "chit-chat",
        "Let's just chat for a bit. What do you think about {topic}?",
        0.04,
        {"topic": TOPICS},
    ),
    Template(
        "chit-chat",
        "Can you recommend a {thing} for a rainy weekend? I'm {mood}.",
        0.05,
        {"thing": THINGS, "mood": MOODS},
    ),
    Template(
        "chit-chat",
        "Which is better, {topic} or {other}? Be honest!",
        0.03,
        {"topic": TOPICS, "other": TOPICS},
    ),
    Template(
        "chit-chat",
        "{greet} I'm {mood} because of {topic}. Can we talk about it?",
        0.06,
        {"greet": GREETINGS, "mood": MOODS, "topic": TOPICS},
    ),
    Template("chit-chat", "Write a short, funny limerick about {topic}.", 0.15, {"topic": TOPICS}),
    # translation
    Template(
        "translation",
        'Translate into {lang}: "{s}"',
        0.05,
        {"lang": LANGUAGES, "s": SENTENCES_EASY},
    ),
    Template(
        "translation",
        'How do you say "{s}" in {lang}?',
        0.05,
        {"lang": LANGUAGES, "s": SENTENCES_EASY},
    ),
    Template(
        "translation",
        "Translate the following into {lang}, keeping the formal register and "
        'the exact legal meaning: "{s}"',
        0.35,
        {"lang": LANGUAGES, "s": SENTENCES_HARD},
    ),
    Template(
        "translation",
        "Give a natural, idiomatic {lang} translation of this sentence and "
        'explain any idioms you had to adapt: "{s}"',
        0.3,
        {"lang": LANGUAGES, "s": SENTENCES_HARD},
    ),
    # reasoning
    Template(
        "reasoning",
        "All {x} are {y}. Some {y} are {z}. Does it follow that some {x} are {z}? Explain.",
        0.35,
        {"x": CATEGORIES, "y": CATEGORIES, "z": CATEGORIES},
    ),
    Template(
        "reasoning",
        "{n1} is taller than {n2}, and {n2} is taller than {n3}. Who is the shortest?",
        0.1,
        {"n1": NAMES, "n2": NAMES, "n3": NAMES},
    ),
    Template(
        "reasoning",
        "What are the likely second-order effects of {policy}? Consider "
        "economic, social and environmental consequences.",
        0.5,
        {"policy": POLICIES},
    ),
    Template(
        "reasoning",
        "{n1}, {n2} and {n3} each own a different pet: a cat, a dog and a parrot. "
        "{n1} is allergic to fur. {n2} does not own the dog. Who owns which pet? Reason step "
        "by step.",
        0.55,
        {"n1": NAMES, "n2": NAMES, "n3": NAMES},
    ),
    Template(
        "reasoning",
        "Steelman both sides of the debate about {policy}, then say which "
        "argument you find stronger and why.",
        0.6,
        {"policy": POLICIES},
    ),
    Template(
        "reasoning",
        "If it takes {a} machines {a} minutes to make {a} widgets, how long "
        "would {b} machines take to make {b} widgets?",
        0.45,
        {"a": NUMBERS_SMALL, "b": NUMBERS_BIG},
    ),
    # summarisation
    Template(
        "summarisation", "Summarise the following in one sentence:\n\n{para}", 0.1, {"para": []}
    ),
    Template(
        "summarisation",
        "Summarise this text for {aud} in three bullet points:\n\n{para}",
        0.25,
        {"para": [], "aud": AUDIENCES},
    ),
    Template("summarisation", "TL;DR please:\n{para}", 0.08, {"para": []}),
)
