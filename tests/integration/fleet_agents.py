"""Run several sync agents as threads of one process (``--count N``), until SIGTERM.

Each is the shipped ``SyncAgent`` with the settings the environment gives (``ROUTEIQ_*``),
except its models directory ``$ROUTEIQ_MODELS_DIR/agent-<i>`` and its id. The fleet test
uses it for the replicas that have no service beside them: 20 processes would cost the
machine more than the test measures.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from decision_service.sync import SyncAgent, SyncSettings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    count = parser.parse_args().count
    base = SyncSettings()  # type: ignore[call-arg]  # registry etc. come from the env
    logging.basicConfig(
        level=base.log_level.upper(),
        format="%(asctime)s %(threadName)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    agents = [
        SyncAgent(
            base.model_copy(
                update={
                    "models_dir": base.models_dir / f"agent-{i}",
                    "sync_agent_id": f"{base.agent_id()}-{i}",
                }
            )
        )
        for i in range(count)
    ]
    threads = [
        threading.Thread(target=agent.run, name=f"agent-{i}") for i, agent in enumerate(agents)
    ]
    stopped = threading.Event()

    def stop(*_: object) -> None:
        for agent in agents:
            agent.stop()
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for thread in threads:
        thread.start()
    while not stopped.wait(0.5):
        pass
    for thread in threads:
        thread.join(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
