"""The write side: the Python SDK (publisher), the bulk importer and the simulator."""

from producers.errors import PublishError
from producers.publisher import Acknowledged, Delivery, EncodedEvent, Publisher, PublisherConfig

__all__ = [
    "Acknowledged",
    "Delivery",
    "EncodedEvent",
    "PublishError",
    "Publisher",
    "PublisherConfig",
]
