"""Where the bundled demo's files are, and the addresses they are served under."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

SITE_DIR = Path(__file__).parent / "site"
SITE_ORIGIN = "https://thecontext.net"
START_URL = SITE_ORIGIN + "/index.md"
#: The origin a routed request was meant for (the demo server plays every host).
ORIGIN_HEADER = "X-Demo-Origin"

PORTAL_MONTH = Path(__file__).parent / "wikipedia" / "Portal_Current_events_January_2023.html"
PORTAL_SINCE, PORTAL_UNTIL = dt.date(2023, 1, 1), dt.date(2023, 1, 31)
