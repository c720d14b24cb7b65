"""Worked examples of gateway hooks: a package you would keep in your own
repository, put on the gateway's PYTHONPATH, and name in routes.yaml.

    tenancy.tenant_from_claim   request   X-Tenant-Id from a verified JWT claim
    signing.sign_backend_call   backend   an HMAC signature on every backend call
    shaping.redact_and_summarise response  drop private fields, add a summary
"""
