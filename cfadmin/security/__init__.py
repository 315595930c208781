"""Who may log in, and how: lockout, second factor, session limits, login and user audit, CSP.

Modules: config (parsers settings.py uses), proxies (the client's address), lockout (django-axes
glue), login_events (login/logout/failure audit), mfa (who needs a second factor; enrolment and
verification), mfa_gate and mfa_views (the pages and the middleware that sends people there),
idle_timeout (session limits), request_context (the current request for audit), user_audit
(staff user and role changes).
"""
