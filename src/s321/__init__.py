"""s321: correlate Section 321 shipment events, score them with rules, release or hold."""

__all__ = ["__version__"]

__version__ = "0.1.0"
