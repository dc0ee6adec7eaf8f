"""Python SDK: `Coordinator` (genesys.client.coordinator) for the coordinator's services."""

from .coordinator import Coordinator, CoordinatorError, LeasedJob

__all__ = ["Coordinator", "CoordinatorError", "LeasedJob"]
