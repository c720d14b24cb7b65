"""The upstream side: one httpx client per upstream (clients.py), requests
built for the hot path (requests.py), what goes to an upstream rendered from
what the client sent (render.py), the attempt loop with circuit breaker,
retries and budget (attempts.py), and the HTTP/1.1 client under it all (h1/)."""
