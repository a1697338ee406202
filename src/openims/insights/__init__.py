"""Insights: unusual activity learned from each account's own events, recorded as ActionTrail insight events.

A background detector (detector.py) reads committed events after a cursor, off the write path, learns each
account's baseline (profiles.py: who acts from where and on what; rates.py: events per window), and opens an
insight with a Start event when behaviour departs from it and closes it with an End event when it returns
(record.py). catalogue.py holds the types and their thresholds; query.py answers LookupInsightEvents.
"""
