"""Hooks that do nothing, for make bench's C+hooks scenario: what the hook
machinery itself costs per request (one hook of each stage)."""

from gateway.hooks import BackendCall, RequestContext, ResponseContext


async def on_request(ctx: RequestContext) -> None:
    return None


async def on_backend(call: BackendCall) -> None:
    return None


async def on_response(response: ResponseContext) -> None:
    return None
