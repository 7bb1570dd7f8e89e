"""RouteIQ decision service: ranks candidate deployments with ONNX routers over gRPC.

The domain modules (``encoder``, ``bundle``, ``router``, ``policy``, ``engine``) know
nothing of gRPC; ``servicer`` and ``server`` are the transport around them.
"""

__version__ = "0.1.0"
