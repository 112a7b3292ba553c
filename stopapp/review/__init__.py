"""Triage: the analysts' queue, report changes, the enrichment job, tags and notes."""
