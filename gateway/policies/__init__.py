"""Route policies: who may call a route (auth and scopes), how often (rate
limit), from which origins (CORS). Each is one module (auth: a package, one
module per provider kind) with its keys in the routes file, its stage and
its registration (`POLICY`), listed in gateway/registry.py in the order the
stages run.

    cors.py       CORS: preflights answered, headers on every answer
    auth/         the Authenticator protocol, one module per provider kind, the stage
    ratelimit.py  token buckets per route and client (the buckets: gateway/stores)
"""
