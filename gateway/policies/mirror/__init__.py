"""Mirroring and shadow comparison (SPEC 3.17 `mirror:` on proxy and
aggregate routes; the key is read with the kind, gateway/routes/mirror.py).

The stage is the innermost around the kind. For a request it samples
(shadow.Mirror.samples: the method is listed, the body small enough, within
`percent`) it hands the kind a `MirrorTap` on the envelope; the kind records
each upstream call on it as it made it (proxy: the one call; aggregate: each
backend's), with the primary's answer when `compare` is on. Once the kind
has returned the answer (the client's answer is decided), the stage fires the
recorded calls: each on a task of its own, which the request never waits for.
"""

from __future__ import annotations

from gateway.envelope import RouteCall
from gateway.policies.mirror.shadow import Mirror, mirror_document
from gateway.routes.model import Aggregate, Proxy, Route
from gateway.stack import Answer, BuildContext, Panel, Policy, RouteHandler, RouteStage

__all__ = ["POLICY", "mirror_stage"]


def mirror_stage(route: Route, context: BuildContext) -> RouteStage | None:
    kind = route.kind
    spec = kind.mirror if isinstance(kind, Proxy | Aggregate) else None
    if spec is None:
        return None
    upstreams = context.table.upstreams
    secrets = context.table.secrets | {v for u in upstreams.values() for _, v in u.headers}
    mirror = Mirror(
        route.name,
        spec,
        upstreams[spec.upstream],
        context.clients[spec.upstream],
        context.guards[spec.upstream],
        secrets,
    )

    def stage(inner: RouteHandler) -> RouteHandler:
        async def mirrored(call: RouteCall) -> Answer:
            envelope = call.envelope
            if not mirror.samples(call.scope["method"], envelope.body_size):
                return await inner(call)
            tap = envelope.mirror = mirror.tap()
            try:
                return await inner(call)
            finally:
                if tap.calls:
                    mirror.fire(tap, envelope.request_id)

        return mirrored

    return stage


def _summary(route: Route) -> str | None:
    kind = route.kind
    spec = kind.mirror if isinstance(kind, Proxy | Aggregate) else None
    if spec is None:
        return None
    share = f"{spec.percent:g}%"
    return f"mirror: {share} to {spec.upstream}" + (" (compared)" if spec.compare else "")


def _owned(context: BuildContext) -> tuple[bytes, ...]:
    """X-Gateway-Mirror is the gateway's: a client's copy never reaches an
    upstream, which could take a real request for a shadow one."""
    return (b"x-gateway-mirror",)


POLICY = Policy(
    name="mirror",
    stage=mirror_stage,
    summary=_summary,
    owned_headers=_owned,
    panels=(
        Panel(
            path="/mirror",
            title="Mirror mismatches",
            document=mirror_document,
            note="mirrored answers that differed from the primary (compare: true), newest first",
        ),
    ),
)
