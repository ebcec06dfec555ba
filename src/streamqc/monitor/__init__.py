"""Live monitoring (`streamqc monitor`): many streams, worker processes, durable events.

- config.py: `streams.yaml`, validated
- runner.py: one stream (read, detect, journal, reconnect, watchdog)
- worker.py / supervisor.py: worker processes and the control surface
- output.py: events on stdout, tailed from the journal
- service.py: the whole service as the CLI runs it
"""

from streamqc.monitor.config import MonitorConfig, StreamConfig, load_config, parse_config
from streamqc.monitor.supervisor import StreamStatus, Supervisor

__all__ = ["MonitorConfig", "StreamConfig", "StreamStatus", "Supervisor", "load_config", "parse_config"]
