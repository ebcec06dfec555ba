"""The HTTP API (app.py), its Prometheus metrics (metrics.py) and the uvicorn thread that serves them."""

from streamqc.server.app import ServerConfig, create_app
from streamqc.server.metrics import MonitorMetrics
from streamqc.server.serve import ServerThread

__all__ = ["MonitorMetrics", "ServerConfig", "ServerThread", "create_app"]
