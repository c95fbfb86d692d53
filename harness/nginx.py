"""nginx as a harness process: Debian's nginx (`make nginx`) in front of the service's API instances, with a
config of its own in the run directory (`daemon off`, pid, logs and temp files there), on 127.0.0.1 at a free
port. An order's live events (`/api/v1/orders/<id>/events`, server-sent events) pass through unbuffered."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx

from harness.faults import loopback_address
from harness.process import ManagedProcess
from harness.util import Timeouts, free_port, system_binary

# How long nginx waits for the next byte of an order's event stream: the service sends a comment every few
# seconds while nothing happens, and a purchase ends within minutes.
EVENTS_READ_TIMEOUT_S = 3600
# An instance that refused a connection is left out this long, then tried again (nginx's max_fails/fail_timeout).
UPSTREAM_FAIL_TIMEOUT_S = 5


class Nginx(ManagedProcess):
    """nginx balancing `upstreams` ("127.0.0.1:PORT" each) round robin; a request an instance refused goes to
    the next one, so a dead instance costs no failed request."""

    CLEAN_STOP_EXIT_CODES = frozenset({0})  # nginx takes SIGTERM as its "fast shutdown" and exits 0 (measured, 1.22)

    def __init__(self, workdir: Path, upstreams: Sequence[str], name: str = "nginx") -> None:
        super().__init__(name, workdir)
        if not upstreams:
            raise ValueError(f"[{name}] needs at least one upstream")
        self.upstreams = [loopback_address(upstream) for upstream in upstreams]
        self.binary = system_binary("nginx", "nginx", Path("/usr/sbin/nginx"))
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "nginx.conf"

    def config(self) -> str:
        temp = self.workdir / "temp"
        servers = "\n".join(f"        server {upstream} max_fails=1 fail_timeout={UPSTREAM_FAIL_TIMEOUT_S}s;"
                            for upstream in self.upstreams)
        proxy_common = """
            proxy_pass http://volta_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout;"""
        return f"""# Written by the harness ({type(self).__name__}); rewritten at each start.
daemon off;
# One process, ours: no master whose workers would outlive it if the harness were SIGKILLed (the kernel's
# parent-death signal reaches only our child), none running as `nobody`, who cannot enter the run directory.
master_process off;
pid {self.workdir / "nginx.pid"};
error_log stderr notice;

# With master_process off nginx does not apply this itself; the harness's own limit (inherited) must be as high.
# It is here for the production configuration copied from this one (docker-compose.regtest.yml has it).
worker_rlimit_nofile 20000;

events {{
    # Each open checkout page holds two (the browser's, and ours to its instance): thousands of them at once.
    worker_connections 10000;
}}

http {{
    # Which instance answered each request: tests read it to see a dead instance avoided.
    log_format upstream '$remote_addr [$time_local] "$request" $status upstream=$upstream_addr '
                        'upstream_status=$upstream_status';
    access_log {self.workdir / "access.log"} upstream;
    client_body_temp_path {temp / "client_body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    # The service bounds bodies itself (413 as JSON); nginx must not answer for it with its own page.
    client_max_body_size 10m;

    upstream volta_api {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{self.port};
        server_name _;

        # Server-sent events: every event reaches the buyer when the service writes it. (Elsewhere nginx
        # buffers, and still honours a response's own X-Accel-Buffering: no, which it never ignores here.)
        location ~ ^/api/v1/orders/[^/]+/events$ {{{proxy_common}
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout {EVENTS_READ_TIMEOUT_S}s;
            proxy_send_timeout {EVENTS_READ_TIMEOUT_S}s;
        }}

        location / {{{proxy_common}
        }}
    }}
}}
"""

    def command(self) -> list[str]:
        # -e stderr: nginx opens its error log before it reads the config; the package's default is /var/log.
        return [str(self.binary), "-p", f"{self.workdir}/", "-c", str(self.config_path), "-e", "stderr"]

    def spawn(self) -> None:
        (self.workdir / "temp").mkdir(exist_ok=True)
        self.config_path.write_text(self.config())
        super().spawn()

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        """Wait until nginx answers and reaches an API instance."""
        self.wait_answering(lambda: httpx.get(f"{self.url}/api/v1/health", timeout=5).status_code == 200,
                            f"{self.url}/api/v1/health", transient=(httpx.TransportError,), timeout=timeout)

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    def state(self) -> dict[str, object]:
        return {"url": self.url, "upstreams": self.upstreams, "pid": self.pid}
