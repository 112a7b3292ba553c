"""The audit trail: every staff read and change of a report, and every admin change."""
