"""Plans and quotas (SPEC 3.16): what each consumer may use.

    plans:
      free:
        rate_limit: {limit: 5, window: 1s}   # per consumer, across every route of the plan
        quota: {limit: 1000, period: day}      # hour | day | month, UTC calendar
        routes: [catalog, user-dashboard]      # optional: the routes the plan may call
    settings:
      default_plan: free                       # identities without a plan of their own

A consumer is an authenticated identity (provider-qualified); its plan is
what its API key (`plan:`) or its token (the provider's `plan_claim`) names,
else `settings.default_plan`. Public routes have no consumer. Two stages:

- `POLICY` (after auth): a plan that does not exist, or does not list the
  route, is 403 `plan-forbidden` (never an unlimited pass); then the plan's
  rate limit, one bucket per consumer for all the plan's routes (429 as
  SPEC 3.5, counted under route label `plan:<name>`).
- `QUOTA_POLICY` (after the route's own rate limit): one request counted
  per admitted request in the consumer's calendar period (stores/quota.py:
  Redis when REDIS_URL is set, else this process); past the limit, 429
  `quota-exceeded` with Retry-After until the period ends. Answers carry
  X-Quota-Limit, -Remaining and -Reset (seconds). While Redis is
  unreachable, RATE_LIMIT_FAILURE_MODE decides, as for rate limits.

`GET /consumers` on the admin listener (and the dashboard) lists the
consumers this process has seen (consumers.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.envelope import Caller, RouteCall
from gateway.errors import PlanForbidden, QuotaExceeded, TooManyRequests, Unavailable
from gateway.observe import metrics
from gateway.policies.plans.consumers import BOOK, Consumer, consumers_document
from gateway.policies.plans.periods import PERIODS, current_period
from gateway.policies.ratelimit import RouteLimit, add_rate_headers, take_token
from gateway.routes.keys import DURATION, INT, STRING, STRINGS, Key, MapOf, Section, Value
from gateway.routes.model import Route, RouteTable
from gateway.routes.openapi import Description
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import Option, RouteContext, TopSection
from gateway.stack import Answer, BuildContext, Panel, Policy, RouteHandler, RouteStage
from gateway.stores.limiter import StoreUnavailable
from gateway.stores.quota import MemoryQuotas, Quotas

__all__ = ["OPTION", "PLANS", "POLICY", "QUOTA_POLICY", "Plan", "Quota", "plans_of"]


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    period: str  # hour, day, month


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    rate_limit: RouteLimit | None = None
    quota: Quota | None = None
    routes: frozenset[str] | None = None  # None: every route


_RATE = Section(
    (
        Key(name="limit", value=INT, required=True),
        Key(name="window", value=DURATION, required=True),
        Key(name="burst", value=INT),
    )
)
_QUOTA = Section(
    (
        Key(name="limit", value=INT, required=True),
        Key(
            name="period",
            value=Value({"enum": list(PERIODS)}, "month", "week"),
            required=True,
        ),
    )
)
PLAN = Section(
    (
        Key(name="rate_limit", value=_RATE),
        Key(name="quota", value=_QUOTA),
        Key(name="routes", value=STRINGS, example=["catalog"]),
    )
)


def _read_plans(r: Reader, node: Node) -> Mapping[str, Plan]:
    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        r.error(node, "plans", f"expected a mapping of plan names, got {node.kind}")
        return {}
    plans = {}
    for name, child in node.value.items():
        plan = _read_plan(r, name, child)
        if plan is not None:
            plans[name] = plan
    return plans


def _read_plan(r: Reader, name: str, node: Node) -> Plan | None:
    where = f"plans.{name}"
    found = PLAN.fields(r, node, where)
    if found is None:
        return None
    rate_limit = quota = routes = None
    if "rate_limit" in found and (
        fields := _RATE.fields(r, found["rate_limit"], f"{where}.rate_limit")
    ):
        limit = (
            r.integer(fields["limit"], f"{where}.rate_limit.limit") if "limit" in fields else None
        )
        window = (
            r.duration(fields["window"], f"{where}.rate_limit.window")
            if "window" in fields
            else None
        )
        burst = (
            r.integer(fields["burst"], f"{where}.rate_limit.burst") if "burst" in fields else limit
        )
        if limit and window and burst:
            rate_limit = RouteLimit(
                route=f"plan:{name}",
                limit=limit,
                capacity=burst,
                rate=limit / window,
                key="client",
                header=None,
            )
    if "quota" in found and (fields := _QUOTA.fields(r, found["quota"], f"{where}.quota")):
        limit = r.integer(fields["limit"], f"{where}.quota.limit") if "limit" in fields else None
        period = r.string(fields["period"], f"{where}.quota.period") if "period" in fields else None
        if period is not None and period not in PERIODS:
            r.error(
                fields["period"], f"{where}.quota.period", f"{period!r}: use hour, day or month"
            )
        elif limit and period:
            quota = Quota(limit, period)
    if "routes" in found:
        listed = r.strings(found["routes"], f"{where}.routes")
        routes = frozenset(listed) if listed is not None else frozenset()
    return Plan(name, rate_limit, quota, routes)


PLANS = TopSection(
    key="plans",
    value=MapOf(PLAN, "free"),
    read=_read_plans,
    doc="Plans: per-consumer rate limits, quotas and route lists",
)


def _read_default(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> str | None:
    return r.string(fields["default_plan"], "settings.default_plan")


OPTION = Option[str](
    name="plans",
    keys=(),
    read=lambda r, fields, ctx: None,
    sections=(PLANS,),
    settings_keys=(Key(name="default_plan", value=STRING, example="free"),),
    read_settings=_read_default,
)


def plans_of(table: RouteTable) -> Mapping[str, Plan]:
    return OPTION.section(table, "plans")


def _has_plans(table: RouteTable) -> bool:
    return bool(plans_of(table)) or OPTION.default(table.settings) is not None


def _plan_of(
    caller: Caller | None, plans: Mapping[str, Plan], default: str | None
) -> tuple[str, Plan | None] | None:
    """The consumer's plan (None: no consumer or no plan); (name, None): unknown."""
    if caller is None:
        return None
    name = caller.plan or default
    if name is None:
        return None
    return name, plans.get(name)


# --- the plan stage: membership, the plan's rate limit ------------------------------
def plan_stage(route: Route, context: BuildContext) -> RouteStage | None:
    table = context.table
    if not _has_plans(table):
        return None
    plans, default, name = plans_of(table), OPTION.default(table.settings), route.name

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            caller = call.envelope.caller
            found = _plan_of(caller, plans, default)
            if found is None or caller is None:
                return await inner(call)
            plan_name, plan = found
            if plan is None:
                raise PlanForbidden(f"the plan {plan_name[:64]!r} does not exist")
            if plan.routes is not None and name not in plan.routes:
                raise PlanForbidden(f"the plan {plan_name!r} does not include this route")
            consumer = BOOK.seen(caller.key, plan_name)
            try:
                if plan.rate_limit is not None:
                    add_rate_headers(call, await take_token(plan.rate_limit, context, call))
                answer = await inner(call)
            except TooManyRequests:
                consumer.rate_limited += 1
                raise
            consumer.admitted += 1
            return answer

        return handler

    return stage


# --- the quota stage ------------------------------------------------------------------
def _quotas(context: BuildContext) -> Quotas:
    """One store per process, kept across reloads (so are its counts)."""
    runtime = context.runtime

    def make() -> Quotas:
        if runtime.redis is not None:
            from gateway.stores.quota import RedisQuotas

            return RedisQuotas(runtime.redis)
        return MemoryQuotas()

    return runtime.keep(("quotas",), make)


def quota_stage(route: Route, context: BuildContext) -> RouteStage | None:
    table = context.table
    plans, default = plans_of(table), OPTION.default(table.settings)
    if not any(plan.quota is not None for plan in plans.values()):
        return None
    store = _quotas(context)
    runtime = context.runtime

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            caller = call.envelope.caller
            found = _plan_of(caller, plans, default)
            if found is None or caller is None or found[1] is None or found[1].quota is None:
                return await inner(call)
            plan_name, quota = found[0], found[1].quota
            consumer = BOOK.seen(caller.key, plan_name)
            now = time.time()
            period, resets_at = current_period(quota.period, now)
            try:
                allowed, used = await store.take(period, caller.key, quota.limit, resets_at)
            except StoreUnavailable:
                metrics.RATELIMIT_STORE_ERRORS.inc()
                if runtime.fail_closed:
                    raise Unavailable("quotas are unavailable") from None
                return await inner(call)
            reset = max(1, math.ceil(resets_at - now))
            headers = [
                ("X-Quota-Limit", str(quota.limit)),
                ("X-Quota-Remaining", str(max(0, quota.limit - used))),
                ("X-Quota-Reset", str(reset)),
            ]
            _note(consumer, quota, period, used)
            if not allowed:
                consumer.quota_refused += 1
                refusal = QuotaExceeded(
                    f"the {_ADJECTIVE[quota.period]} quota of {quota.limit} requests is used up",
                    reset,
                )
                refusal.headers.update(headers)
                raise refusal
            call.answer_headers += headers
            return await inner(call)

        return handler

    return stage


_ADJECTIVE = {"hour": "hourly", "day": "daily", "month": "monthly"}


def _note(consumer: Consumer, quota: Quota, period: str, used: int) -> None:
    consumer.quota_used, consumer.quota_limit, consumer.period = used, quota.limit, period


# --- descriptions -----------------------------------------------------------------------
_QUOTA_HEADERS = {
    "X-Quota-Limit": {"schema": {"type": "integer"}, "description": "requests per period"},
    "X-Quota-Remaining": {"schema": {"type": "integer"}, "description": "requests left"},
    "X-Quota-Reset": {"schema": {"type": "integer"}, "description": "seconds to the next period"},
}


def describe(route: Route, description: Description) -> None:
    table = description.table
    if not _has_plans(table) or not route.options.get("auth"):
        return
    description.refusal(
        403, "The consumer's plan does not include this route (type plan-forbidden)"
    )
    if any(plan.quota is not None for plan in plans_of(table).values()):
        description.ok_headers.update(_QUOTA_HEADERS)
        description.refusal(
            429,
            "The consumer's quota is used up (type quota-exceeded)",
            {
                **_QUOTA_HEADERS,
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"},
            },
        )


POLICY = Policy(
    name="plan",
    option=OPTION,
    stage=plan_stage,
    describe=describe,
    panels=(
        Panel(
            path="/consumers",
            title="Top consumers",
            document=consumers_document,
            note="plans and quota use of the consumers this process has seen",
        ),
    ),
)
QUOTA_POLICY = Policy(name="quota", stage=quota_stage)
