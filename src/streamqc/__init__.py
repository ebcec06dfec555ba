"""streamqc: a stream quality monitor that decodes in-process and keeps frames in memory."""

from streamqc.events import Event, Severity

__all__ = ["Event", "Severity", "__version__"]
__version__ = "0.1.0"
