"""Fillers for the synthetic prompt templates (``trainer.synthetic_templates``).

Data, not logic: each filler is (text, difficulty bump) that a template slot draws from;
``PARAGRAPH_SENTENCES`` are the sentences a summarisation prompt's paragraph is made of.
"""

from __future__ import annotations

LANGS: list[tuple[str, float]] = [
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
CODE_EASY = [
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
CODE_HARD = [
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
CODE_CONSTRAINTS = [
    ("no external libraries", 0.02),
    ("full type annotations", 0.02),
    ("thread safety", 0.1),
    ("constant extra memory", 0.1),
    ("property-based tests", 0.08),
    ("clear docstrings", 0.0),
    ("benchmarks for large inputs", 0.06),
]
CODE_SYMPTOMS = [
    ("throws an IndexError on empty input", 0.05),
    ("deadlocks under load", 0.3),
    ("returns wrong results for negative numbers", 0.1),
    ("leaks memory", 0.25),
    ("is very slow for large inputs", 0.15),
    ("fails only on Windows", 0.2),
]
SNIPPETS = [
    ("def mean(xs):\n    return sum(xs) / len(xs)", 0.0),
    ("for i in range(len(items)):\n    if items[i] == target:\n        del items[i]", 0.05),
    ("while True:\n    with lock:\n        job = queue.get()\n        process(job)", 0.15),
    ("cache = {}\ndef get(key):\n    cache[key] = load(key)\n    return cache[key]", 0.08),
    ("result = [x for x in data if x > 0][0]", 0.02),
]

NUMBERS_SMALL = [(str(n), 0.0) for n in (3, 7, 12, 15, 24, 36, 48, 64, 99, 125)]
NUMBERS_BIG = [(str(n), 0.04) for n in (347, 1289, 4096, 7531, 12345, 98765)]
FUNCS = [
    ("x^2 + 3x", 0.0),
    ("sin(x) * cos(x)", 0.08),
    ("e^(2x) * ln(x)", 0.15),
    ("x^3 - 4x^2 + 2", 0.03),
    ("1 / (1 + x^2)", 0.1),
    ("sqrt(x) * e^x", 0.12),
]
THEOREMS = [
    ("there are infinitely many prime numbers", 0.0),
    ("the square root of 2 is irrational", 0.0),
    ("every bounded monotone sequence of reals converges", 0.15),
    ("the sum of the first n odd numbers is n^2", 0.0),
    ("a group of prime order is cyclic", 0.15),
    ("every tree with n nodes has n - 1 edges", 0.05),
    ("the harmonic series diverges", 0.05),
    ("there is no largest even number", -0.05),
]

TOPICS = [
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
MOODS = [
    ("tired", 0.0),
    ("stressed", 0.03),
    ("bored", 0.0),
    ("excited", 0.0),
    ("nervous", 0.03),
    ("homesick", 0.04),
    ("a bit lonely", 0.05),
]
GREETINGS = [
    ("Hi!", 0.0),
    ("Hello!", 0.0),
    ("Hey there.", 0.0),
    ("Good morning!", 0.0),
    ("Evening!", 0.0),
    ("Yo!", 0.0),
    ("Hiya,", 0.0),
    ("Hello again.", 0.0),
]
THINGS = [
    ("book", 0.0),
    ("movie", 0.0),
    ("season", 0.0),
    ("city", 0.0),
    ("board game", 0.0),
    ("kind of music", 0.0),
    ("breakfast", 0.0),
]

LANGUAGES = [
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
SENTENCES_EASY = [
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
SENTENCES_HARD = [
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

NAMES = [
    ("Alice", 0.0),
    ("Bob", 0.0),
    ("Chen", 0.0),
    ("Dana", 0.0),
    ("Emeka", 0.0),
    ("Farah", 0.0),
    ("Goran", 0.0),
    ("Hana", 0.0),
]
CATEGORIES = [
    ("cats", 0.0),
    ("mammals", 0.0),
    ("engineers", 0.0),
    ("squares", 0.0),
    ("rectangles", 0.0),
    ("birds", 0.0),
    ("musicians", 0.0),
    ("blue things", 0.0),
]
POLICIES = [
    ("a four-day work week", 0.0),
    ("a universal basic income", 0.05),
    ("banning cars in city centres", 0.0),
    ("a carbon tax on aviation", 0.05),
    ("remote-only companies", 0.0),
    ("free public transport", 0.0),
]

PARAGRAPH_SENTENCES = [
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
AUDIENCES = [
    ("a ten-year-old", 0.05),
    ("busy executives", 0.1),
    ("a technical audience", 0.08),
    ("a tweet", 0.1),
    ("a newsletter", 0.03),
]
