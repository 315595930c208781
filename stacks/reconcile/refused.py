"""The one exception of reconcile's repairs and import: the repair does not apply (any more)."""


class RepairRefused(Exception):
    """The repair does not apply (any more); the message says why and what to do."""
