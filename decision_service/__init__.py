"""RouteIQ decision service: ranks candidate deployments with ONNX routers over gRPC.

The domain (``domain`` types, ``encoder``, ``embedding_front``, ``bundle``, ``router``,
``policy``, ``strategies``, ``versions``, ``decide``, ``runner``, ``admin``, ``reload``)
knows nothing of gRPC; ``convert``, ``boundary``, ``servicer``, ``admin_servicer`` and
``server`` are the transport around it.
"""

__version__ = "0.1.0"
