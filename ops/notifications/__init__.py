"""Telling people (issue 16): channels (apprise URLs, encrypted), delivery rows sent by the
worker with retries and duplicate suppression, rules (data) deciding which event notifies whom,
the events cfadmin raises, and re-escalation of incidents nobody acknowledged."""
