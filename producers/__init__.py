"""The write side: publish validated touchpoints to Kafka."""

from producers.publisher import Publisher

__all__ = ["Publisher"]
