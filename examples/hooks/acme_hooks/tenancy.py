"""A request hook: every upstream learns the caller's tenant from a verified
JWT claim, and nobody else can say which tenant they are.

    hooks:
      request: [acme_hooks.tenancy:tenant_from_claim]

The claim is read from the token the route's auth already verified (an API
key carries no claims, so such a request is refused). A client's own
X-Tenant-Id never reaches an upstream: the hook's value replaces it.
"""

from __future__ import annotations

from gateway.hooks import RequestContext

CLAIM = "tenant"
HEADER = "X-Tenant-Id"


async def tenant_from_claim(ctx: RequestContext) -> None:
    tenant = ctx.request.claims.get(CLAIM)
    if not isinstance(tenant, str) or not tenant.isprintable() or not tenant:
        ctx.reject(403, f"the token names no {CLAIM!r}")
    ctx.set_header(HEADER, tenant)
