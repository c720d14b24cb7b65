"""Sending mirrored calls, and comparing their answers (SPEC 3.17).

`Mirror.fire` runs once the client's answer is decided: each recorded call
becomes a task of its own (never awaited by the request), unless the
route's `max_in_flight` mirrored calls are running already, in which case it
is dropped and counted. A mirrored call goes to the mirror upstream's
targets (its balancer, its pool, its `tls:`) with `X-Gateway-Mirror: 1`,
bounded by that upstream's `timeout`; its answer is read to at most
KEEP bytes (decoded) and never reaches the client. With `compare`, the task
then waits for the primary's answer (a proxied body is known only once it
has been relayed, at most WAIT_FOR_PRIMARY) and compares the two (diff.py).

`gateway_mirror_total{route,result}`: `match`, `mismatch` (compare on),
`sent` (compare off), `error` (no answer from the mirror, or no whole
primary to compare with) and `dropped`. A draining process (SIGTERM) starts
no more mirrored calls and cancels those running. The last 50 mismatches, across
routes, are kept for `GET /mirror` and the dashboard, with every value the
gateway knows as a secret masked.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from gateway.envelope import MirrorCall, MirrorTap, Primary
from gateway.lifecycle import lifecycle
from gateway.observe import metrics
from gateway.observe.configview import SECRET, mask_text
from gateway.observe.logs import utc_timestamp
from gateway.policies.mirror.diff import Difference, compare, shown
from gateway.routes.model import MirrorSpec, Upstream
from gateway.upstream.attempts import UpstreamGuard, is_retryable_status
from gateway.upstream.requests import build_request, send

__all__ = ["KEEP", "RECENT", "Mirror", "kept", "mirror_document"]

logger = logging.getLogger("gateway.mirror")

KEEP = 1024 * 1024  # bytes of an answer kept for comparison; a larger one: status only
WAIT_FOR_PRIMARY = 60.0
OFF_LOOP = 256 * 1024  # answers larger than this (both together) are compared on a worker thread
RECENT_SIZE = 50
SHOWN = 500  # characters of a value /mirror keeps
_SENSITIVE = frozenset(
    {"authorization", "cookie", "set-cookie", "password", "secret", "token", "x-api-key"}
)


@dataclass(frozen=True, slots=True)
class Mismatch:
    at: float
    route: str
    method: str
    path: str
    request_id: str
    differences: tuple[tuple[str, Any, Any], ...]  # path, primary's value, mirror's (masked)


RECENT: deque[Mismatch] = deque(maxlen=RECENT_SIZE)


class Mirror:
    """One route's mirror: what it samples, where it sends, what it compares."""

    def __init__(
        self,
        route: str,
        spec: MirrorSpec,
        upstream: Upstream,
        client: httpx.AsyncClient,
        guard: UpstreamGuard,
        secrets: Collection[str],
    ) -> None:
        self.route, self.spec, self.upstream = route, spec, upstream
        self.client, self.guard, self.secrets = client, guard, secrets
        self.in_flight = 0
        self._tasks: dict[asyncio.Task[None], Callable[[], None]] = {}  # and how to end each
        self._share = spec.percent / 100.0

    def samples(self, method: str, body_size: int) -> bool:
        """Is this request mirrored? Its method is listed, its body small
        enough, and it falls within `percent`."""
        if method not in self.spec.methods or body_size > self.spec.max_body_size:
            return False
        return self._share >= 1.0 or random.random() < self._share  # noqa: S311 (sampling)

    def tap(self) -> MirrorTap:
        return MirrorTap(self.spec.max_body_size, self.spec.compare)

    def fire(self, tap: MirrorTap, request_id: str) -> None:
        """Send the recorded calls, each on its own task (or drop it)."""
        for call in tap.calls:
            if self.in_flight >= self.spec.max_in_flight or lifecycle.draining:
                metrics.observe_mirror(self.route, "dropped")
                _forget(call)
                continue
            self.in_flight += 1
            task = asyncio.ensure_future(self._run(call, request_id))
            end = _ender(task)
            self._tasks[task] = end
            lifecycle.open_ended.add(end)  # SIGTERM: mirrored calls end first
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        lifecycle.open_ended.discard(self._tasks.pop(task))
        self.in_flight -= 1

    async def _run(self, call: MirrorCall, request_id: str) -> None:
        try:
            answer = await self._send(call)
            if answer is None:
                metrics.observe_mirror(self.route, "error")
                _forget(call)
                return
            if not self.spec.compare:
                metrics.observe_mirror(self.route, "sent")
                return
            primary = await _primary(call)
            if primary is None:
                metrics.observe_mirror(self.route, "error")
                return
            sizes = sum(len(body) for _, body in (primary, answer) if body is not None)
            if sizes > OFF_LOOP:  # parsing a MiB or two: not on the loop every request shares
                differences = await asyncio.to_thread(compare, primary, answer, self.spec.ignore)
            else:
                differences = compare(primary, answer, self.spec.ignore)
            metrics.observe_mirror(self.route, "mismatch" if differences else "match")
            if differences:
                self._keep(call, request_id, differences)
        except Exception:  # never out of a fire-and-forget task
            logger.exception("mirror call of route %s failed", self.route)
            metrics.observe_mirror(self.route, "error")

    async def _send(self, call: MirrorCall) -> tuple[int, bytes | None] | None:
        """The mirror's answer: its status and (decoded) body, None past KEEP
        bytes; None when there was no answer."""
        balancer = self.guard.balancer
        target = balancer.pick()
        origin = target.origin
        request = build_request(
            call.method,
            origin.url(self.upstream.base_path + call.path, call.query),
            origin.host_header,
            [*call.headers, (b"x-gateway-mirror", b"1")],
            call.body,
        )
        target.in_flight += 1
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(self.upstream.timeout):
                response = await send(self.client, request)
                kept = bytearray()
                async for chunk in response.aiter_bytes():
                    kept += chunk
                    if len(kept) > KEEP:
                        break  # too large to compare: status only
        except (TimeoutError, httpx.HTTPError) as exc:
            balancer.record(target, failed=True)
            logger.info(
                "mirror call to %s failed: %s",
                self.upstream.name,
                type(exc).__name__,
                extra={"route": self.route, "upstream": self.upstream.name},
            )
            return None
        finally:
            target.in_flight -= 1
            if response is not None:
                await response.aclose()
        balancer.record(target, failed=is_retryable_status(response.status_code))
        return response.status_code, bytes(kept) if len(kept) <= KEEP else None

    def _keep(self, call: MirrorCall, request_id: str, differences: list[Difference]) -> None:
        RECENT.append(
            Mismatch(
                at=time.time(),
                route=self.route,
                method=call.method,
                path=mask_text(call.path, self.secrets),  # never the query: it may hold keys
                request_id=request_id,
                differences=tuple(
                    (path, _bounded(self._masked(path, a)), _bounded(self._masked(path, b)))
                    for path, a, b in differences
                ),
            )
        )

    def _masked(self, path: str, value: Any) -> Any:
        """The value as JSON, with every string masked (secrets, URLs'
        userinfo and query) and credential-like fields as ***."""
        if path.rsplit(".", 1)[-1].lower() in _SENSITIVE:
            return SECRET
        value = shown(value)
        if isinstance(value, str):
            return mask_text(value, self.secrets)
        if isinstance(value, dict):
            return {
                mask_text(str(k), self.secrets): self._masked(str(k), v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._masked(path, v) for v in value]
        return value


async def kept(
    relay: AsyncIterable[bytes],
    future: asyncio.Future[Primary],
    status: int,
    headers: list[tuple[bytes, bytes]],
) -> AsyncIterator[bytes]:
    """`relay`, passed on as it comes, kept (to KEEP bytes) for comparison:
    `future` gets the status and the decoded body once the whole body has
    passed, and is cancelled if it did not (the client went away)."""
    body: bytearray | None = bytearray()
    whole = False
    try:
        async for chunk in relay:
            if body is not None and not future.done():
                body += chunk
                if len(body) > KEEP:
                    body = None
            yield chunk
        whole = True
    finally:
        if not future.done():
            if whole:
                future.set_result((status, _decoded(body, headers)))
            else:
                future.cancel()


def _decoded(body: bytearray | None, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The body as the mirror's is compared: without its content encoding."""
    if body is None:
        return None
    encoding = [(n, v) for n, v in headers if n.lower() == b"content-encoding"]
    if not encoding:
        return bytes(body)
    try:
        return httpx.Response(200, headers=encoding, content=bytes(body)).read()
    except httpx.DecodingError:
        return None


async def _primary(call: MirrorCall) -> tuple[int | None, bytes | None] | None:
    primary = call.primary
    if primary is None or isinstance(primary, tuple):
        return primary
    try:
        return await asyncio.wait_for(asyncio.shield(primary), WAIT_FOR_PRIMARY)
    except (TimeoutError, asyncio.CancelledError):
        return None


def _ender(task: asyncio.Task[None]) -> Callable[[], None]:
    def end() -> None:
        task.cancel()

    return end


def _forget(call: MirrorCall) -> None:
    """A primary future no one will read: cancelled, so the proxy stops keeping its body."""
    if isinstance(call.primary, asyncio.Future) and not call.primary.done():
        call.primary.cancel()


def _bounded(value: Any) -> Any:
    """A value kept for /mirror: as it is, or (past SHOWN characters of JSON)
    its JSON text cut short, so that 50 mismatches stay small."""
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = orjson.dumps(value).decode()
    return value if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _text(value: Any, limit: int = 80) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def mirror_document(limit: int | None = None) -> dict[str, Any]:
    """`GET /mirror` and the dashboard's panel: the last mismatches, newest first."""
    newest = list(reversed(RECENT))[:limit]
    return {
        "mismatches": [
            {
                "at": utc_timestamp(m.at, "seconds"),
                "route": m.route,
                "request": f"{m.method} {m.path}",
                "request_id": m.request_id,
                "differences": [
                    {"path": path, "primary": a, "mirror": b} for path, a, b in m.differences
                ],
            }
            for m in newest
        ],
        "columns": ["at", "route", "request", "differences", "request id"],
        "rows": [
            [
                utc_timestamp(m.at, "seconds"),
                m.route,
                f"{m.method} {m.path}",
                "; ".join(f"{p}: {_text(a)} ≠ {_text(b)}" for p, a, b in m.differences[:3]),
                m.request_id,
            ]
            for m in newest
        ],
    }
