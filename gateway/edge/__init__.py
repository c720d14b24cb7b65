"""The ASGI side: start-up (boot.py), the application uvicorn runs
(lifespan.py), limits on what a client may send before a request exists
(protocol.py), the lean Django handler that builds each request's envelope
and reads its body (handler.py, context.py, body.py, address.py), the first
middleware, the views, and live reload of the routes file (reload.py)."""
