"""Alerts: rules over the account's events (or insights) that, when an event matches, queue an alert in that
event's own transaction and deliver it to a signed webhook, syslog (JSON or CEF) and email. See docs/alerts.md."""
