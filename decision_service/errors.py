"""The service's exception hierarchy.

Domain code raises these; the transport maps each class to one gRPC status code in
``decision_service.boundary`` and nowhere else.
"""

from __future__ import annotations


class RouteIQError(Exception):
    """Base of every error the decision service raises on purpose."""


class InvalidRequest(RouteIQError):
    """The caller sent something we cannot route; the message says what to fix."""


class NotReady(RouteIQError):
    """No valid router bundle is loaded, so no decision can be made."""


class Overloaded(RouteIQError):
    """The service is at capacity and sheds the request instead of queueing it."""


class DeadlineTooShort(RouteIQError):
    """The caller's deadline cannot be met."""


class BundleRefused(RouteIQError):
    """A router bundle failed validation and was not loaded."""


class EncoderRefused(RouteIQError):
    """An encoder directory failed validation and was not loaded."""


class NotCalibrated(RouteIQError):
    """A request asked for a share of strong-model calls; the serving bundle has no table."""


class UnknownVersion(RouteIQError):
    """An admin call named a bundle version or strategy this replica does not hold."""


class Unauthenticated(RouteIQError):
    """An admin call came without the configured bearer token."""
