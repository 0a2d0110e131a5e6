"""Operator tools: consumer lag, the lag dashboard, ``explain`` for one shipment, and the
commands that publish rule sets and reference data."""
