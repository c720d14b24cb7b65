import pytest
from acme_hooks.tenancy import tenant_from_claim

from gateway.hooks import Rejection
from gateway.hooks.testing import request_context


async def test_the_tenant_claim_becomes_a_header() -> None:
    ctx = request_context(identity="sam", claims={"sub": "sam", "tenant": "acme"})
    await tenant_from_claim(ctx)
    assert ctx.headers_set == {"x-tenant-id": "acme"}


@pytest.mark.parametrize("claims", [{}, {"tenant": ""}, {"tenant": 7}, {"tenant": "a\nb"}])
async def test_no_usable_tenant_is_a_403(claims: dict[str, object]) -> None:
    with pytest.raises(Rejection) as rejected:
        await tenant_from_claim(request_context(claims=claims))
    assert rejected.value.status == 403
