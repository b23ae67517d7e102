"""CSV answers read by Python's csv module: the same rows and values as the JSON answers.

Usage: python3 read_in_python.py BASE_URL API_KEY
Checks, for the live demo meeting, the participants and the attendance CSV against their JSON:
the byte-order mark, the header, every row and value (times in ISO 8601 in Asia/Shanghai, or in
the zone asked for), and a name written as a formula neutralised.
"""

import csv
import io
import json
import sys
import urllib.request
from datetime import datetime
from zoneinfo import ZoneInfo

base, key = sys.argv[1:3]
MEETING = "100000000000000001"


def get(path):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers, response.read()


def cell(value, column, zone):
    """A JSON value as the CSV cell should hold it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if column.endswith("_time"):
        return datetime.fromtimestamp(value, zone).isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return str(value)


def check(view, rows_of, skip, zone_name="Asia/Shanghai"):
    _, body = get(f"/meetings/{MEETING}/{view}")
    rows = rows_of(json.loads(body))
    headers, body = get(f"/meetings/{MEETING}/{view}?format=csv&tz={zone_name}")
    assert headers["Content-Type"].startswith("text/csv"), headers["Content-Type"]
    assert body.startswith(b"\xef\xbb\xbf"), "no byte-order mark"
    # Excel's way: utf-8-sig strips the mark; newline="" leaves CRLF to the csv module.
    reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline=""))
    read = list(reader)
    assert len(read) == len(rows), (len(read), len(rows))
    zone = ZoneInfo(zone_name)
    formulas = 0
    for got, want in zip(read, rows):
        columns = [c for c in want if c not in skip]
        if "join_time" in want and "provisional" not in want:
            # Participant records carry `provisional` only when true; the CSV always has it.
            want = dict(want, provisional=False)
            columns.append("provisional")
        assert reader.fieldnames == columns, (reader.fieldnames, columns)
        for column in columns:
            expected = cell(want[column], column, zone)
            assert got[column] == expected, (column, got[column], expected)
            formulas += got[column].startswith("'=")
    print(f"python csv: {view} in {zone_name}: {len(read)} rows equal to the JSON, "
          f"{formulas} formula cells neutralised")
    return formulas


neutralised = check("participants", lambda d: d["participants"], ())
check("attendance", lambda d: d["attendees"], ("sessions",))
check("attendance", lambda d: d["attendees"], ("sessions",), "America/New_York")
assert neutralised > 0, "the demo holds names written as formulas"
