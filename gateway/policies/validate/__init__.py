"""Request and response validation (SPEC 3.16): `validate:` on a route, or in
`settings` for every route that sets none (`validate: null` turns it off).

    validate:
      body: {$ref: schemas/order.json}    # a file beside the routes file, or inline
      query: {type: object, properties: {limit: {type: integer, maximum: 100}}}
      headers: {...}                       # lower-cased header names
      params: {...}                        # the path's parameters
      response: {schema: {$ref: schemas/order-out.json}, mode: report}   # or enforce

Two stages: `POLICY` checks the request after auth, plans, rate limits and
quotas (400 `request-invalid` with `errors`, 415), `RESPONSE_POLICY` checks
2xx JSON answers around the route's kind (request.py, response.py). Schemas
are compiled when the routes file loads (schemas.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.envelope import RouteCall
from gateway.policies.validate.request import MAX_ERRORS, check_request
from gateway.policies.validate.response import ResponseCheck, checked, validation_document
from gateway.policies.validate.schemas import CompiledSchema, SchemaError, compile_schema
from gateway.routes.keys import Key, Section, Value
from gateway.routes.model import Route
from gateway.routes.openapi import Description
from gateway.routes.reader import Reader
from gateway.routes.source import Node
from gateway.routes.vocabulary import Option, RouteContext
from gateway.stack import Answer, BuildContext, Panel, Policy, RouteHandler, RouteStage

__all__ = ["OPTION", "POLICY", "RESPONSE_POLICY", "Validation"]

_PARTS = ("params", "query", "headers", "body")


@dataclass(frozen=True, slots=True, kw_only=True)
class Validation:
    params: CompiledSchema | None = None
    query: CompiledSchema | None = None
    headers: CompiledSchema | None = None
    body: CompiledSchema | None = None
    response: CompiledSchema | None = None
    enforce: bool = False  # response mode

    @property
    def checks_request(self) -> bool:
        return any(getattr(self, part) is not None for part in _PARTS)


_SCHEMA = Value(
    {"type": ["object", "boolean"]},
    {"type": "object", "properties": {"limit": {"type": "integer", "maximum": 100}}},
    "a string is not a schema",
)
_RESPONSE = Section(
    (
        Key(name="schema", value=_SCHEMA, required=True),
        Key(name="mode", value=Value({"enum": ["report", "enforce"]}, "enforce", "ignore")),
    )
)
SECTION = Section(
    (
        Key(name="body", value=_SCHEMA, example={"type": "object", "required": ["id"]}),
        Key(name="query", value=_SCHEMA),
        Key(name="headers", value=_SCHEMA, example={"required": ["x-tenant"]}),
        Key(name="params", value=_SCHEMA, example={"properties": {"id": {"type": "integer"}}}),
        Key(name="response", value=_RESPONSE),
    )
)


def _read(r: Reader, fields: Mapping[str, Node], ctx: RouteContext) -> Validation | None:
    where = ctx.at("validate")
    found = SECTION.fields(r, fields["validate"], where)
    if found is None:
        return None
    schemas: dict[str, Any] = {}
    for part in _PARTS:
        if part in found:
            schemas[part] = _compiled(r, found[part], f"{where}.{part}")
    enforce = False
    if "response" in found:
        inner = _RESPONSE.fields(r, found["response"], f"{where}.response")
        if inner is not None:
            schemas["response"] = _compiled(r, inner["schema"], f"{where}.response.schema")
            if "mode" in inner:
                mode = r.string(inner["mode"], f"{where}.response.mode")
                if mode not in (None, "report", "enforce"):
                    r.error(inner["mode"], f"{where}.response.mode", "must be report or enforce")
                enforce = mode == "enforce"
    return Validation(**schemas, enforce=enforce)


def _compiled(r: Reader, node: Node, where: str) -> CompiledSchema | None:
    try:
        return compile_schema(node.plain(), r.base, r.files)
    except SchemaError as exc:
        r.error(node, where, f"invalid schema: {exc}")
        return None


OPTION = Option[Validation](
    name="validate",
    keys=(Key(name="validate", value=SECTION, nullable=True),),
    read=_read,
    in_settings=True,
)


# --- the stages -------------------------------------------------------------------
def request_stage(route: Route, context: BuildContext) -> RouteStage | None:
    rules = OPTION.of(route)
    if rules is None or not rules.checks_request:
        return None
    schemas = {part: getattr(rules, part) for part in _PARTS}

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            await check_request(call, **schemas)
            return await inner(call)

        return handler

    return stage


def response_stage(route: Route, context: BuildContext) -> RouteStage | None:
    rules = OPTION.of(route)
    if rules is None or rules.response is None:
        return None
    check = ResponseCheck(rules.response, rules.enforce, context.table.settings.max_response_size)
    name = route.name

    def stage(inner: RouteHandler) -> RouteHandler:
        async def handler(call: RouteCall) -> Answer:
            answer = await inner(call)
            if answer is None:
                return None
            return await checked(check, name, call.envelope.request_id, answer)

        return handler

    return stage


# --- descriptions -----------------------------------------------------------------
def describe(route: Route, description: Description) -> None:
    rules = OPTION.of(route)
    if rules is None or not rules.checks_request:
        return
    description.refusal(
        400,
        "The request does not match the route's schema (type request-invalid; "
        f"`errors` lists at most {MAX_ERRORS} problems)",
    )
    if rules.body is not None:
        description.refusal(415, "The request body is not JSON (type unsupported-media-type)")
        description.request_body = {
            "required": True,
            "content": {"application/json": {"schema": rules.body.inlined}},
        }
    if rules.params is not None:
        for name, schema in (rules.params.inlined.get("properties") or {}).items():
            description.param_schemas[name] = schema
    for part, place in (("query", "query"), ("headers", "header")):
        compiled = getattr(rules, part)
        if compiled is None:
            continue
        required = set(compiled.inlined.get("required") or ())
        for name, schema in (compiled.inlined.get("properties") or {}).items():
            description.parameters.append(
                {"name": name, "in": place, "required": name in required, "schema": schema}
            )


def describe_response(route: Route, description: Description) -> None:
    rules = OPTION.of(route)
    if rules is None or rules.response is None:
        return
    description.ok_content["application/json"] = {"schema": rules.response.inlined}
    if rules.enforce:
        description.refusal(
            502,
            "The upstream's answer does not match the route's response schema "
            "(type response-invalid)",
        )


def _summary(route: Route) -> str | None:
    rules = OPTION.of(route)
    if rules is None:
        return None
    parts = [part for part in _PARTS if getattr(rules, part) is not None]
    if rules.response is not None:
        parts.append("response (" + ("enforce" if rules.enforce else "report") + ")")
    return "validate: " + ", ".join(parts) if parts else None


POLICY = Policy(
    name="validate",
    option=OPTION,
    stage=request_stage,
    describe=describe,
    summary=_summary,
)
RESPONSE_POLICY = Policy(
    name="validate-response",
    stage=response_stage,
    describe=describe_response,
    panels=(
        Panel(
            path="/validation",
            title="Response validation",
            document=validation_document,
            note="2xx JSON answers that did not match validate.response, newest first",
        ),
    ),
)
