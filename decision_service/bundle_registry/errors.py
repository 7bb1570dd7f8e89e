"""What the registry raises: one base class, so a CLI or an agent catches the family at once."""

from __future__ import annotations


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (missing version, bad bundle, ...)."""


class GateRefused(RegistryError):
    """The quality gate refused a promotion."""


class StoreUnavailable(RegistryError):
    """The object store did not answer (network, endpoint down, throttling): retry later.

    Kept apart from the other errors because a sync agent treats it differently: the last
    good bundle keeps serving and the same step is retried with backoff.
    """


class VerificationFailed(RegistryError):
    """Downloaded objects do not match their manifest's sha256 or signature: never installed."""
