"""(issue 15, being built) The models of the incident response feature "resources"."""
