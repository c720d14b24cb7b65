"""The route kinds, and the stages the gateway itself puts in every route's
stack. Each kind is one module (or package) with its handler and its
registration (`KIND`); gateway/registry.py composes each route's stack.

    aggregate/     `backends`: each backend a chain of stages (render -> hooks ->
                   send -> decode -> shape), fanned out and merged, behind the
                   cache when the route has one; response hooks on the answer
    proxy.py       `proxy`: render -> guarded send -> the answer relayed as it comes
    wsroute.py     `websocket`: a plain request 426; a handshake: guarded upstream
                   handshake -> accept -> relay (relay.py)
    hooks.py       running Python hooks; the request hooks' stage
    refusals.py    what the edge refused while reading the request, answered in turn

A new route kind is one module with a handler and a `KIND`, plus its reader
in gateway/routes/, registered in gateway/registry.py.
"""
