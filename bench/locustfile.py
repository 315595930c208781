"""Load for the web benchmark (bench/web.py runs it headless against loopback; not on its own).

One endpoint per run (BENCH_ENDPOINT): each simulated client sends its next request as soon
as the previous one answered. Pages are fetched with a session of the bench superuser that
bench/web.py logged in through the login form before the run (one per client, from
BENCH_SESSIONS); "login" fetches the form and posts the password, a fresh client each time.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from locust import HttpUser, constant, task

ENDPOINT = os.environ.get("BENCH_ENDPOINT", "stack list")
PATHS: dict[str, str] = json.loads(os.environ.get("BENCH_PATHS", "{}"))
SESSIONS = (
    Path(os.environ["BENCH_SESSIONS"]).read_text().split() if "BENCH_SESSIONS" in os.environ else []
)
USERNAME = os.environ.get("BENCH_USERNAME", "")
PASSWORD = os.environ.get("BENCH_PASSWORD", "")
_next_session = itertools.count()


class AdminClient(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        if ENDPOINT != "login" and SESSIONS:
            session = SESSIONS[next(_next_session) % len(SESSIONS)]
            host = self.host.split("//", 1)[-1].split(":", 1)[0]
            self.client.cookies.set("sessionid", session, domain=host, path="/")

    @task
    def load(self) -> None:
        if ENDPOINT == "login":
            self.log_in()
            return
        with self.client.get(
            PATHS[ENDPOINT], name=ENDPOINT, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 200:  # a redirect to the login page is a failure here
                response.failure(f"HTTP {response.status_code}")

    def log_in(self) -> None:
        self.client.cookies.clear()
        self.client.get(PATHS["login"], name="login GET")
        token = self.client.cookies.get("csrftoken", "")
        with self.client.post(
            PATHS["login"],
            data={
                "username": USERNAME,
                "password": PASSWORD,
                "csrfmiddlewaretoken": token,
                "next": "/admin/",
            },
            name="login POST",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:  # a wrong password answers 200 with the form
                response.failure(f"HTTP {response.status_code}: not logged in")
