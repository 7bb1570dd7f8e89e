"""RouteIQ trainer: exports the serving encoder, builds routing data, trains and exports routers.

Everything this package writes is read by ``decision_service`` through the schemas in
``decision_service.manifest``; serving never imports this package (nor torch).
"""
