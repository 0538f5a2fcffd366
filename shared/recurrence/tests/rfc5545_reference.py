"""An independent RFC 5545 expansion for the recurrence property test: python-dateutil's rrule on zoneinfo time.

Reads one JSON request per line on stdin, {"rule": "FREQ=...", "start": "<UTC RFC 3339>", "zone": "Area/City",
"limit": N, "latest": "<UTC RFC 3339>"}, and writes one JSON line back: the first N occurrences as UTC RFC 3339 strings (fewer when the series
ends, or reaches `latest`, where every Taskwatch series ends). The first line written is {"tzdata": "<version>"} so the caller can check both sides use the same tz data.

RFC 5545 semantics that dateutil leaves to its caller, taken from the RFC itself:
* DTSTART is always the first occurrence and counts towards COUNT (3.8.5.3), even when the rule does not match it;
  dateutil only yields it when it matches, so it is put first here and rule dates at or before it are dropped.
* A local time in a DST gap uses the offset from before the gap, a repeated local time its first instance
  (3.3.5). `resolve` does that from the definition: the earliest instant that reads back as the wall time, and in a
  gap zoneinfo's fold=0 (PEP 495: the offset from before the transition). zoneinfo's fold=0 alone is not enough:
  where a zone's rules change without its offset changing (America/Nuuk, 2023-10-29 01:00 UTC), it gives wall
  times just before the change an offset the zone never had there.
"""

import importlib.metadata
import json
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def resolve(wall: datetime) -> datetime:
    """The instant of wall-clock time `wall` (its tzinfo the zone) per RFC 5545 3.3.5, in UTC."""
    naive = wall.replace(tzinfo=None)
    valid = [
        instant
        for instant in (wall.replace(fold=fold).astimezone(timezone.utc) for fold in (0, 1))
        if instant.astimezone(wall.tzinfo).replace(tzinfo=None) == naive
    ]
    return min(valid) if valid else wall.replace(fold=0).astimezone(timezone.utc)


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
        instant = resolve(occurrence)
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
