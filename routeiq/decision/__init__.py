"""The ``routeiq.decision`` proto package (see ``proto/routeiq/decision``)."""
