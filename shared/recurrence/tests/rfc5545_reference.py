"""An independent RFC 5545 expansion for the recurrence property test: python-dateutil's rrule on zoneinfo time.

Reads one JSON request per line on stdin, {"rule": "FREQ=...", "start": "<UTC RFC 3339>", "zone": "Area/City",
"limit": N, "latest": "<UTC RFC 3339>"}, and writes one JSON line back: the first N occurrences as UTC RFC 3339 strings (fewer when the series
ends, or reaches `latest`, where every Taskwatch series ends). The first line written is {"tzdata": "<version>"} so the caller can check both sides use the same tz data.

RFC 5545 semantics that dateutil leaves to its caller, taken from the RFC itself:
* DTSTART is always the first occurrence and counts towards COUNT (3.8.5.3), even when the rule does not match it;
  dateutil only yields it when it matches, so it is put first here and rule dates at or before it are dropped.
* A local time in a DST gap uses the offset from before the gap, a repeated local time its first instance
  (3.3.5). zoneinfo does exactly that for fold=0, which is what dateutil's wall-clock datetimes carry.
"""

import importlib.metadata
import json
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expand(rule: str, start_utc: str, zone: str, limit: int, latest: datetime) -> list[str]:
    tz = ZoneInfo(zone)
    start = parse_utc(start_utc).astimezone(tz)
    parts = [part for part in rule.split(";") if not part.startswith("COUNT=")]
    count = next((int(part[6:]) for part in rule.split(";") if part.startswith("COUNT=")), None)
    # dateutil's wall-clock datetimes share the zone object, so comparisons between them are on wall time.
    later = (d for d in rrulestr(";".join(parts), dtstart=start) if d.replace(tzinfo=None) > start.replace(tzinfo=None))
    out = [start.astimezone(timezone.utc)]
    wanted = limit if count is None else min(limit, count)
    for occurrence in later:
        if len(out) >= wanted:
            break
        instant = occurrence.replace(fold=0).astimezone(timezone.utc)
        if instant > latest:
            break
        out.append(instant)
    return [at.strftime("%Y-%m-%dT%H:%M:%SZ") for at in out[:wanted]]


def main() -> None:
    print(json.dumps({"tzdata": importlib.metadata.version("tzdata")}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"occurrences": expand(
                request["rule"], request["start"], request["zone"], request["limit"], parse_utc(request["latest"])
            )}
        except Exception as error:  # reported to the Rust side, which fails the case with it
            answer = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
