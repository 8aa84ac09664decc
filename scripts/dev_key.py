"""Issue an API key: store its SHA-256 in a keys file (AUTH_API_KEYS_FILE) and print the key once.

Usage: .venv/bin/python scripts/dev_key.py --keys-file /secrets/api-keys.json --user anna [--name phone] [--admin]
The router reads the keys file at start: restart it (or roll the Deployment) after adding or removing a key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alice.runtime.auth import ADMIN_ROLE, AuthError, add_api_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys-file", type=Path, required=True, help="JSON file of key hashes (created 0600)")
    parser.add_argument("--user", required=True, help="the user id every call with this key acts for")
    parser.add_argument("--name", default="", help="a label for operators (shown in nothing the user sees)")
    parser.add_argument("--admin", action="store_true", help=f"grant the {ADMIN_ROLE!r} role (ResetStats)")
    args = parser.parse_args(argv)
    try:
        key = add_api_key(args.keys_file, args.user, name=args.name, roles=[ADMIN_ROLE] if args.admin else [])
    except (AuthError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(key)
    print(f"(stored only as a hash in {args.keys_file}; this is the only time the key is shown)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
