"""Cross-check the simulator against Tencent's official Python SDK.

Pages through a demo meeting on a running `wemeet-gateway simulate` with the official SDK
(`wemeet-openapi-sdk-python==1.0.10`), a fresh JWTAuthenticator per request as the SDK's own
examples do (an authenticator caches its nonce, timestamp and signature), and checks that every
record arrives, in order. Then checks that a tampered signature, a replayed nonce and a skewed
clock each get Tencent's error code. This proves the simulator accepts what Tencent's own client
sends, and so that it verifies signatures the way Tencent does.

Usage: python3 tests/sdk/crosscheck.py http://127.0.0.1:PORT
(credentials from WEMEET_APP_ID, WEMEET_SECRET_ID, WEMEET_SECRET_KEY; the simulator's demo
credentials when unset).
"""

import json
import os
import sys
import time
import urllib.request
from urllib.parse import urlparse

import wemeet_openapi
from wemeet_openapi.core import constants, xhttp
from wemeet_openapi.core.authenticator import JWTAuthenticator
from wemeet_openapi.core.exception import ServiceException
from wemeet_openapi.service.meetings.api import ApiV1MeetingsMeetingIdParticipantsGetRequest

MEETING = "100000000000000001"
EXPECTED = 1234


def main():
    base = sys.argv[1]
    url = urlparse(base)
    client = wemeet_openapi.Client(
        app_id=os.environ.get("WEMEET_APP_ID", "200000001"),
        sdk_id=os.environ.get("WEMEET_SDK_ID", ""),  # the SDK sends SdkId always; empty when none

        secret_id=os.environ.get("WEMEET_SECRET_ID", "AKIDdemoSecretId"),
        secret_key=os.environ.get("WEMEET_SECRET_KEY", "demo-secret-key-not-for-production"),
        clt=xhttp.Client(host=url.netloc, protocol=url.scheme, serializer=constants.DEFAULT_SERIALIZER),
    )
    api = client.meetings_api

    def page(pos, auth=None):
        request = ApiV1MeetingsMeetingIdParticipantsGetRequest(
            meeting_id=MEETING, userid="owner1", pos=str(pos), size="100")
        auth = auth or JWTAuthenticator()
        return api.v1_meetings_meeting_id_participants_get(
            request=request, authenticator_options=[auth.options_build()])

    received, pos, calls = [], 0, 0
    while True:
        calls += 1
        if calls > 20:
            fail("more pages than 1,234 records can need")
        data = page(pos).data
        received.extend(p.userid + "|" + p.join_time + "|" + p.user_name for p in data.participants)
        if not data.has_remaining:
            break
        pos = data.next_pos

    with urllib.request.urlopen(f"{base}/_simulator/meetings/{MEETING}/records") as r:
        stored = json.load(r)
    expected = [p["userid"] + "|" + p["join_time"] + "|" + p["user_name"] for p in stored]
    if len(expected) != EXPECTED or received != expected:
        fail(f"received {len(received)} records, expected the simulator's {len(expected)} in order")
    print(f"official SDK paged {len(received)} records in {calls} calls: all received, in order")

    expect_error("tampered signature", 200003, lambda: page(0, JWTAuthenticator(signature="A" * 88)))
    nonce, ts = 424242424242, str(int(time.time()))
    page(0, JWTAuthenticator(nonce=nonce, timestamp=ts))
    expect_error("replayed nonce", 190301, lambda: page(0, JWTAuthenticator(nonce=nonce, timestamp=ts)))
    expect_error("skewed clock", 190300,
                 lambda: page(0, JWTAuthenticator(timestamp=str(int(time.time()) - 400))))
    print("crosscheck: 1 passed, 0 failed")


def expect_error(what, code, call):
    try:
        call()
    except ServiceException as e:
        body = json.loads(e.api_resp.raw_body)
        got = body["error_info"]["error_code"]
        if got != code:
            fail(f"{what}: expected error {code}, got {got}")
        print(f"{what}: error {code} as Tencent answers it")
        return
    fail(f"{what}: the simulator accepted it")


def fail(message):
    print(f"sdk cross-check: {message}")
    print("crosscheck: 0 passed, 1 failed")
    sys.exit(1)


if __name__ == "__main__":
    main()
