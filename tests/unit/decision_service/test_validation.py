import math

import pytest

from decision_service.decide import validate
from decision_service.domain import CandidateIn, RequestLimits, RouteQuery
from decision_service.errors import InvalidRequest

LIMITS = RequestLimits(max_prompt_chars=1000, max_candidates=3, max_id_chars=8)
ONE = [CandidateIn("a", "gpt-4o")]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (RouteQuery(candidates=ONE), "exactly one of prompt or embedding"),
        (RouteQuery(candidates=ONE, prompt="hi", embedding=[0.0] * 4), "exactly one of"),
        (RouteQuery(candidates=ONE, prompt=" \n\t"), "prompt is empty"),
        (RouteQuery(candidates=ONE, prompt=""), "prompt is empty"),
        (RouteQuery(candidates=ONE, prompt="\u2003\u00a0"), "prompt is empty"),
        (RouteQuery(candidates=ONE, prompt="x" * 1001), "1001 characters"),
        (RouteQuery(candidates=ONE, embedding=[0.5] * 3), "embedding has 3 values"),
        (RouteQuery(candidates=ONE, embedding=[math.inf, 0, 0, 0]), "NaN or infinite"),
        (RouteQuery(candidates=[], prompt="hi"), "no candidates"),
        (RouteQuery(candidates=ONE * 4, prompt="hi"), "exceed the limit of 3"),
        (RouteQuery(candidates=[CandidateIn("", "m")], prompt="hi"), "empty id"),
        (RouteQuery(candidates=[CandidateIn("x" * 9, "m")], prompt="hi"), "longer than 8"),
        (RouteQuery(candidates=[CandidateIn("a", "m")] * 2, prompt="hi"), "appears twice"),
        (RouteQuery(candidates=[CandidateIn("a", "")], prompt="hi"), "empty model_name"),
        (
            RouteQuery(candidates=[CandidateIn("a", "m", cost_per_million_tokens=-1)], prompt="hi"),
            "cost_per_million_tokens",
        ),
        (
            RouteQuery(
                candidates=[CandidateIn("a", "m", cost_per_million_tokens=math.nan)], prompt="x"
            ),
            "cost_per_million_tokens",
        ),
        (RouteQuery(candidates=ONE, prompt="hi", cost_weight=-0.1), "cost_weight"),
        (RouteQuery(candidates=ONE, prompt="hi", cost_weight=math.inf), "cost_weight"),
    ],
)
def test_invalid_queries_name_what_to_fix(query, message):
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(")):
        validate(query, LIMITS, dimension=4)


@pytest.mark.parametrize(
    "query",
    [
        RouteQuery(candidates=ONE, prompt="hello"),
        RouteQuery(candidates=ONE, prompt="  \n x"),
        RouteQuery(candidates=ONE, embedding=[0.5, 0.5, 0.5, 0.5]),
        RouteQuery(candidates=ONE * 1, prompt="x" * 1000, cost_weight=1.0),
    ],
)
def test_valid_queries_pass(query):
    validate(query, LIMITS, dimension=4)
