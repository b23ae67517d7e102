"""The same fetch done by Tencent's official Python SDK in a plain paging loop: the reference
for bench/upstream_fetch.rs. Usage: python3 bench/sdk_loop.py BASE_URL [ROUNDS]"""

import statistics
import sys
import time
from urllib.parse import urlparse

import wemeet_openapi
from wemeet_openapi.core import constants, xhttp
from wemeet_openapi.core.authenticator import JWTAuthenticator
from wemeet_openapi.service.meetings.api import ApiV1MeetingsMeetingIdParticipantsGetRequest

MEETING = "100000000000000002"


def fetch(api):
    records, pos, pages = [], 0, 0
    while True:
        request = ApiV1MeetingsMeetingIdParticipantsGetRequest(
            meeting_id=MEETING, userid="owner1", pos=str(pos), size="100")
        data = api.v1_meetings_meeting_id_participants_get(
            request=request, authenticator_options=[JWTAuthenticator().options_build()]).data
        pages += 1
        records.extend(data.participants)
        if not data.has_remaining:
            return records, pages
        pos = data.next_pos


def client(url):
    """The SDK's meetings API against the simulator at `url` (parsed), with its demo credentials."""
    return wemeet_openapi.Client(
        app_id="200000001", sdk_id="", secret_id="AKIDdemoSecretId",
        secret_key="demo-secret-key-not-for-production",
        clt=xhttp.Client(host=url.netloc, protocol=url.scheme, serializer=constants.DEFAULT_SERIALIZER),
    ).meetings_api


def main():
    url = urlparse(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    api = client(url)
    fetch(api)  # warm-up
    walls, per_page = [], []
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        records, pages = fetch(api)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert len(records) == 50000, len(records)
        walls.append(wall * 1e3)
        per_page.append(cpu * 1e6 / pages)
    print(f"python sdk:  {rounds} fetches of 50,000 records ({pages} pages): "
          f"median wall {statistics.median(walls):.1f} ms, median client CPU {statistics.median(per_page):.1f} us/page")


if __name__ == "__main__":
    main()
