"""A local server that speaks the Hugging Face Hub's HTTP API: the embedded default target.

``LocalHub(root).start()`` (or ``with LocalHub(root) as hub``) serves ``root`` on a free
port; the real ``huggingface_hub`` client works against ``hub.url`` unchanged.
"""

from publisher.hub.server.app import HubApp, LocalHub, RootLocked, Settings
from publisher.hub.server.faults import FaultRule, Faults

__all__ = ["FaultRule", "Faults", "HubApp", "LocalHub", "RootLocked", "Settings"]
