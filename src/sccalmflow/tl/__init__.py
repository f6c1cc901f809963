"""Tools: the computations figures need (scanpy's ``tl``), kept out of :mod:`sccalmflow.pl`."""

__all__: list[str] = []
