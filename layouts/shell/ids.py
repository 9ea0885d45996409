"""Component ids of the frame around every page, which the pages' callbacks also read."""

from __future__ import annotations

from typing import Final

ROOT: Final = "app-root"  # the outer element, marked while time-travelling
URL: Final = "url"  # dcc.Location: which page is shown
LANG: Final = "lang"  # store: the chosen language, kept in the browser
PAGE: Final = "page"
LANG_BUTTON: Final = "lang-button"
TITLE: Final = "app-title"
CITY: Final = "app-city"
CLOCK: Final = "app-clock"
CLOCK_DATE: Final = "app-clock-date"
CLOCK_TICK: Final = "app-clock-tick"
USER: Final = "app-user"
