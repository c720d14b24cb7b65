"""nginx as a plain reverse proxy to one upstream, for make bench's scenario A
comparison. Writes a config into a temporary directory and runs nginx in the
foreground (one worker, no access log)."""

from __future__ import annotations

import shutil
from pathlib import Path

CONFIG = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream stub {{ server 127.0.0.1:{upstream}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{port} backlog=16384;
        location /proxy/ {{
            proxy_pass http://stub/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def nginx_command(directory: Path, port: int, upstream: int) -> list[str] | None:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        return None
    conf = directory / "nginx.conf"
    conf.write_text(CONFIG.format(dir=directory, port=port, upstream=upstream))
    return [binary, "-c", str(conf), "-p", str(directory), "-e", str(directory / "error.log")]
