"""An RTMP server (nginx with its RTMP module, from Debian) as a real process on 127.0.0.1."""

from __future__ import annotations

import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

NGINX_RTMP_MODULE = pathlib.Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
# What to install where they are missing (Debian): apt-get install nginx libnginx-mod-rtmp
DEBIAN_PACKAGES = ("nginx", "libnginx-mod-rtmp")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing() -> str | None:
    """Why the server cannot run here, or None."""
    if shutil.which("nginx") is None:
        return "nginx is not installed (Debian: apt-get install nginx libnginx-mod-rtmp)"
    if not NGINX_RTMP_MODULE.exists():
        return f"nginx's RTMP module is not installed ({NGINX_RTMP_MODULE}; Debian: apt-get install libnginx-mod-rtmp)"
    return None


class RtmpServer:
    """nginx-rtmp relaying live streams: publish to and play from `url(name)`.

    Application `live`; one process (`master_process off`), logs in its own folder.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="streamqc-rtmp-"))
        (self.folder / "nginx.conf").write_text(f"""
load_module {NGINX_RTMP_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {self.folder}/nginx.pid;
error_log {self.folder}/error.log warn;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{self.port};
        application live {{ live on; record off; wait_key on; }}
    }}
}}
""")
        self.process: subprocess.Popen | None = None

    def url(self, name: str = "test") -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{name}"

    def start(self, timeout_s: float = 10.0) -> "RtmpServer":
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.folder), "-e", str(self.folder / "error.log"), "-c", str(self.folder / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.process.stderr.read().decode(errors='replace')[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.close()
        raise TimeoutError(f"nginx-rtmp did not listen on {self.port} in {timeout_s} s")

    def close(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "RtmpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def stop_process(process: subprocess.Popen | None) -> None:
    """Terminate a peer's server process, killing it if it does not go within 5 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
