"""Schemathesis hooks: keep schema-valid requests valid under the rules a schema cannot express.

The gateway's OpenAPI document states these rules in the parameters' descriptions, and the
gateway answers 400 when one is broken:
- `start_time` is not after `end_time`, and the window spans at most 372 days (kept here to 62,
  two upstream windows, so that the run stays within the demo's quota); a missing
  `end_time` is now and a missing `start_time` 31 days ago, so one given alone lies in the last
  31 days (less 10 minutes, for the time a fetch takes);
- `userid` and `operator_id` exclude each other; `operator_id` and `operator_id_type` go together;
- a recurring meeting needs `sub_meeting_id`;
- `tz` is an IANA time zone name (a schema can only say it is a string);
- a webhook delivery is signed with the subscription's token (the demo prints it; CI passes it
  in `WEBHOOK_TOKEN`), and its data is base64 of an event (`check_str`: base64 of anything):
  positive cases are made so and signed, so that they reach what lies behind the signature.

Schemathesis generates each parameter on its own, so a "positive" case can break them. This hook
repairs positive cases only; negative cases (meant to be rejected) are left as generated, so the
checks that invalid input is refused still run on everything Schemathesis makes.
"""

import base64
import hashlib
import json
import os
import random
import time

import schemathesis
from schemathesis.core.parameters import ParameterLocation

MAX_WINDOW = 31 * 24 * 3600
LONGEST_WINDOW_HERE = 2 * MAX_WINDOW
LIST_ROUTES = ("/meetings/{meeting_id}/participants", "/meetings/{meeting_id}/attendance")
ZONES = ("Asia/Shanghai", "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
LONE_BOUND_SLACK = 10 * 60  # a bound given alone must be this much younger than 31 days
RECURRING_MEETING = "100000000000000003"
SUB_MEETINGS = ("1717000001", "1717000002")


@schemathesis.hook
def map_case(context, case):
    if case.operation.path == "/webhooks/wemeet":
        return sign_delivery(case)
    if case.operation.path not in LIST_ROUTES:
        return case
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.QUERY):
        return case
    query = dict(case.query or {})
    if "userid" in query and "operator_id" in query:
        del query["operator_id"]
    if "operator_id" in query:
        query["operator_id_type"] = 3
    else:
        query.pop("operator_id_type", None)
    if "start_time" in query and "end_time" in query:
        start, end = sorted((int(query["start_time"]), int(query["end_time"])))
        if end - start > LONGEST_WINDOW_HERE:
            start = end - LONGEST_WINDOW_HERE
        query["start_time"], query["end_time"] = start, end
    else:
        now = int(time.time())
        for name in ("start_time", "end_time"):
            oldest = now - MAX_WINDOW + LONE_BOUND_SLACK
            if name in query and not oldest <= int(query[name]) <= now:
                query[name] = now - 24 * 3600
    if "tz" in query:
        query["tz"] = random.choice(ZONES)
    path = case.path_parameters or {}
    if str(path.get("meeting_id")) == RECURRING_MEETING:
        if str(query.get("sub_meeting_id")) not in SUB_MEETINGS:
            query["sub_meeting_id"] = SUB_MEETINGS[0]
    case.query = query
    return case


def sign_delivery(case):
    """Signs a positive webhook case as Tencent signs deliveries: SHA-1 over the token, the
    timestamp, the nonce and the data, sorted and joined."""
    token = os.environ.get("WEBHOOK_TOKEN")
    negative = case.meta is not None and any(
        case.meta.is_negative_at(location)
        for location in (ParameterLocation.HEADER, ParameterLocation.QUERY, ParameterLocation.BODY)
    )
    if not token or negative:
        return case
    if case.method.upper() == "GET":
        query = dict(case.query or {})
        if not isinstance(query.get("check_str"), str):
            return case
        data = base64.b64encode(query["check_str"].encode()).decode()
        query["check_str"] = data
        case.query = query
    else:
        if not isinstance(case.body, dict) or not isinstance(case.body.get("data"), str):
            return case
        # An event of a kind the gateway acknowledges and ignores, named after what was made.
        event = {"event": "conformance." + case.body["data"][:40], "trace_id": str(random.random()), "payload": []}
        data = base64.b64encode(json.dumps(event).encode()).decode()
        case.body = dict(case.body, data=data)
    timestamp = str(int(time.time() * 1000))
    nonce = str(random.randint(1, 10**9))
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce, data])).encode()).hexdigest()
    case.headers = dict(case.headers or {}, timestamp=timestamp, nonce=nonce, signature=signature)
    return case
