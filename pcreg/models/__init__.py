"""Neural network models of the suite (torch is imported here at module level)."""

from pcreg.models.pcreg_net import PCRegNet, PCRegNetOutput

__all__ = ["PCRegNet", "PCRegNetOutput"]
