"""Write a development .env on first `make run` (no Django import: settings need it first)."""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def development_env() -> str:
    secret_key = secrets.token_urlsafe(50)
    fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return (
        "# Written by `make run` for local development. Never use these values in production.\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secret_key}\n"
        f"SECRETS_ENCRYPTION_KEYS={fernet_key}\n"
        "ALLOWED_HOSTS=127.0.0.1,localhost\n"
        "# The Coolify simulator `make run` starts (while COOLIFY_URL is unset):\n"
        f"CFADMIN_SIMULATOR_TOKEN={secrets.token_urlsafe(24)}\n"
        "# The local PocketBase `make run` starts (while POCKETBASE_URL is unset):\n"
        "POCKETBASE_EMAIL=cfadmin@example.com\n"
        f"POCKETBASE_PASSWORD={secrets.token_urlsafe(18)}\n"
    )


def main(path: Path = BASE_DIR / ".env") -> int:
    if path.exists():
        return 0
    path.write_text(development_env())
    path.chmod(0o600)
    print(f"cfadmin: wrote a development {path.name} (DEBUG on, fresh keys).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
