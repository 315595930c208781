"""The public status page (issue 16): components and their state from the health checks, public
incidents with their public updates, announced maintenance windows, 90-day uptime bars, and the
same as JSON and RSS/Atom feeds. No login; cached; under settings.STATUS_PAGE_PATH."""
