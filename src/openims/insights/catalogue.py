"""The insight types and the thresholds that define them (docs/insights-and-alerts.md explains each)."""

from __future__ import annotations

from openims import clock

IP = "IpInsight"
AK = "AkInsight"
CALL_RATE = "ApiCallRateInsight"
ERROR_RATE = "ApiErrorRateInsight"
SIGNIN_FAILURE = "SigninFailureInsight"
TYPES = (IP, AK, CALL_RATE, ERROR_RATE, SIGNIN_FAILURE)
RATE_TYPES = (CALL_RATE, ERROR_RATE, SIGNIN_FAILURE)

# An insight event's eventType and eventCategory, and the events.event_rw it is filed under (it is neither a
# read nor a write): LookupEvents leaves such events out unless asked (audit/lookup.py).
EVENT_TYPE = "ActionTrailInsight"
CATEGORY = "Insight"

# The baseline: what the account did over the 7 days before the moment judged.
BASELINE_MS = 7 * clock.DAY_MS
# A key or console user is learned silently for its first day: its first IPs, services and action classes
# are its baseline, not anomalies.
LEARNING_MS = clock.DAY_MS
# AkInsight: a key used again after this long without use (or first used this long after it was created).
DORMANT_MS = 30 * clock.DAY_MS

# Rate insights: a window's count must reach max(MIN_COUNT, mean + SIGMAS * stddev, FACTOR * mean, peak + 1)
# of the baseline windows to start an insight (peak: the highest window of the baseline, so a recurring burst
# such as a nightly job is the account's own); the insight ends at the first window below that threshold.
SIGMAS = 6.0
FACTOR = 2.0
# metric -> (insight type, minimum count per window)
METRICS = {
    "write": (CALL_RATE, 20),
    "error": (ERROR_RATE, 10),
    "signin_user": (SIGNIN_FAILURE, 5),
    "signin_ip": (SIGNIN_FAILURE, 10),
}
# IpInsight and AkInsight end once the unusual use has not recurred for this many windows.
QUIET_WINDOWS = 5

# Error codes of a request whose signature was never proven: whoever sent it need not hold the key, so it
# teaches nothing about the key (and is not "the key acting").
UNPROVEN = ("Signature", "IncompleteSignature", "InvalidAccessKeyId", "InvalidTimeStamp")
# The serviceName of console sign-in events (audit/outside_api.CONSOLE_SIGNIN).
SIGNIN_EVENT = "ConsoleSignin"
