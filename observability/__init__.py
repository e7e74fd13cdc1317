"""What Rapport's processes tell an operator: Prometheus metrics, and logs a shipper reads.

Each process keeps its metrics in a registry of its own (never prometheus_client's global
one), so a test or a bench can run a worker, a collector and a read API in one process.
"""
