"""Maintenance windows' automated checks (issue 17): before (Coolify's version, a PocketBase
backup, every live stack's status), after (the version again, the stacks that stopped), the
summary of the day after; outages inside an announced window marked expected; the checklist
probes that read them; the schedule's and the buttons' jobs."""
