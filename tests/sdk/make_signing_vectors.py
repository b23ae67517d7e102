"""Reference signing vectors from Tencent's official Python SDK.

The Rust signer is checked against these vectors (src/upstream/signing.rs), so
they must come from Tencent's own code, never from ours.

Regenerate with:

    pip install wemeet-openapi-sdk-python==1.0.10 requests-toolbelt
    python3 tests/sdk/make_signing_vectors.py > tests/fixtures/signing_vectors.json

Each vector is built the way the SDK builds a real request: a `requests`
PreparedRequest (which percent-encodes the query), then the SDK's
JWTAuthenticator sets every header with a fixed timestamp and nonce.
`target` is the request target exactly as the SDK sends and signs it.
"""

import json
import sys

import requests

from wemeet_openapi.core.authenticator import JWTAuthenticator
from wemeet_openapi.core.config import Config

BASE = "https://api.meeting.qq.com"
PARTICIPANTS = "/v1/meetings/{}/participants"

CREDS = {"app_id": "200000001", "sdk_id": "28370012345", "secret_id": "AKIDdemo1234567890", "secret_key": "s3cr3t-Key-for-vectors"}


def vector(name, method, path, query=None, raw_target=None, body=None, creds=None,
           timestamp="1700000000", nonce=12345):
    creds = dict(CREDS, **(creds or {}))
    if raw_target is not None:
        request = requests.Request(method=method, url=BASE + raw_target, data=body or b"")
    else:
        request = requests.Request(method=method, url=BASE + path, params=query or [], data=body or b"")
    prepared = request.prepare()
    config = Config(clt=None, version=None, app_id=creds["app_id"], sdk_id=creds["sdk_id"],
                    secret_id=creds["secret_id"], secret_key=creds["secret_key"])
    JWTAuthenticator(nonce=nonce, timestamp=timestamp).options_build()(config).auth_header(prepared)
    headers = {k: v for k, v in prepared.headers.items() if v not in (None, "") and k != "Content-Length"}
    body_text = prepared.body.decode("utf-8") if isinstance(prepared.body, bytes) else (prepared.body or "")
    return {
        "name": name,
        "method": method,
        "query": [[k, str(v)] for k, v in (query or [])],
        "target": prepared.path_url,
        "body": body_text,
        "app_id": creds["app_id"],
        "sdk_id": creds["sdk_id"],
        "secret_id": creds["secret_id"],
        "secret_key": creds["secret_key"],
        "timestamp": timestamp,
        "nonce": str(nonce),
        "signature": headers["X-TC-Signature"],
        "headers": headers,
    }


def main():
    seed = "144115214488302892"
    vectors = [
        vector("get_without_query", "GET", PARTICIPANTS.format(seed)),
        vector("get_with_userid", "GET", PARTICIPANTS.format(seed), [("userid", "owner1")]),
        vector("get_seed_page_example", "GET", PARTICIPANTS.format(seed), [("userid", "owner1"), ("size", 20)]),
        vector("get_every_parameter", "GET", PARTICIPANTS.format("100000000000000003"),
               [("sub_meeting_id", "1717000001"), ("operator_id", "rooms-demo"), ("operator_id_type", 3),
                ("userid", "admin"), ("pos", 5678), ("size", 100), ("start_time", 1700000000),
                ("end_time", 1700086400)]),
        vector("get_time_window", "GET", PARTICIPANTS.format(seed),
               [("userid", "owner1"), ("start_time", 1572085800), ("end_time", 1572089400)]),
        vector("get_percent_encoded_value", "GET", PARTICIPANTS.format(seed), [("userid", "a/b?c&d=e#f%g")]),
        vector("get_cjk_value", "GET", PARTICIPANTS.format(seed), [("userid", "张三"), ("size", 100)]),
        vector("get_emoji_value", "GET", PARTICIPANTS.format(seed), [("userid", "😀-owner")]),
        vector("get_reserved_unencoded_target", "GET", None,
               raw_target="/v1/meetings/144115214488302892/participants?userid=owner1&pos=0&size=100"),
        vector("get_max_nonce", "GET", PARTICIPANTS.format(seed), [("userid", "owner1")],
               nonce=18446744073709551615),
        vector("get_sdk_style_nonce", "GET", PARTICIPANTS.format(seed), [("userid", "owner1"), ("pos", 0), ("size", 100)],
               timestamp="1764100000", nonce=1764100000123456789),
        vector("get_non_ascii_secret", "GET", PARTICIPANTS.format(seed), [("userid", "owner1")],
               creds={"secret_key": "密钥-clé-🔑"}),
        vector("get_without_sdk_id", "GET", PARTICIPANTS.format(seed), [("userid", "owner1")],
               creds={"sdk_id": None}),
        vector("post_json_body", "POST", "/v1/meetings", None,
               body=json.dumps({"userid": "owner1", "instanceid": 1, "subject": "周会 weekly", "type": 0,
                                "start_time": "1700000000", "end_time": "1700003600"},
                               ensure_ascii=False).encode("utf-8")),
        vector("get_other_credentials", "GET", PARTICIPANTS.format("100000000000000001"), [("userid", "admin")],
               creds={"app_id": "211000000", "secret_id": "AKIDother", "secret_key": "another key with spaces"},
               timestamp="1", nonce=1),
    ]
    json.dump({"generated_by": "wemeet-openapi-sdk-python==1.0.10 (tests/sdk/make_signing_vectors.py)",
               "vectors": vectors}, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
