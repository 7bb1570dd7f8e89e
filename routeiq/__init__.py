"""RouteIQ's wire contract: the Python package generated from ``proto/routeiq``.

Every component (the decision service, the LiteLLM gateway client, the trainer) takes its
wire types from ``routeiq.decision.v1`` and from nowhere else. Only ``make proto`` writes
the ``*_pb2*`` files below; the package ``__init__`` files are the only hand-written code.
"""
