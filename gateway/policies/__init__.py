"""Per-route policies, built once when a routes table loads: who may call the
route (auth), how often (rate limit), and from which origins (CORS). The
middleware reads the policy of the route the handler matched, from the
request's envelope.

    auth/       the Authenticator protocol and one module per provider kind
    ratelimit/  token buckets (in-process or Redis) and their middleware
    cors.py     the CORS policy and its middleware
    cache.py    the response cache of aggregate routes (used by the pipeline)
    route.py    RoutePolicy: the three, built for one route
"""
