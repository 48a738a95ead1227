"""mailflow: the emails a consultant sends while ending a client contract, run on schedule."""

__version__ = "0.1.0"
