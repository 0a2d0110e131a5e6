"""The Avro contracts of s321: one named type per ``.avsc`` file, namespace ``s321.v1``.

Loaded by :mod:`s321.serialization` through :mod:`importlib.resources`; ``released/v<N>/``
holds each released version, against which every change is checked for compatibility.
"""

__all__: list[str] = []
