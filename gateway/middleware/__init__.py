"""The gateway's middleware: async-only, small, one concern each.

Django's stock middleware (and anything built on `MiddlewareMixin`) runs its
hooks on a thread under ASGI; none of it is used. Each class here sets
`async_capable = True`, `sync_capable = False` and marks itself a coroutine
function, so Django calls it directly on the event loop. None of them raises:
exceptions become problem+json where they happen.
"""
