"""The sync agent of a decision-service pod (``routeiq-sync-agent``, torch-free).

It keeps ``MODELS_DIR/current`` (the service's ``--bundle``) and ``MODELS_DIR/encoder``
on what a registry channel names. Coordination across the fleet goes through Redis:

* notification: ``trainer promote``/``rollback`` publish on
  ``{prefix}:registry:{name}:channel:{channel}``; subscribed agents wake and re-read the
  channel pointer from the store (the store decides, the message only wakes);
* download slots: ``{prefix}:sync:{name}:slot:{0..N-1}``, each taken with ``SET NX PX``
  and renewed while held, bound concurrent downloads across the fleet to N; a dead agent's
  slot expires with its TTL.

Without Redis (unset or down) the agent polls the store with jitter and downloads without a
slot; with the store down it keeps the last good bundle and retries with backoff. A
download is verified (sha256 of every file, Ed25519 signature when configured) in a hidden
staging folder and renamed into place only when it passed.
"""

from .agent import SyncAgent, SyncResult
from .settings import SyncSettings

__all__ = ["SyncAgent", "SyncResult", "SyncSettings"]
