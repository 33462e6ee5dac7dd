"""`make run`: migrate, create the demo data, start fake_anthropic when no ANTHROPIC_API_KEY is
set, and serve the app (ASGI, through daphne's runserver) on http://127.0.0.1:8000."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))
FAKE_PORT = int(os.environ.get("FAKE_ANTHROPIC_PORT", "8082"))


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def wait_for_port(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "1")
    python = sys.executable
    manage = [python, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=ROOT)
    subprocess.run([*manage, "demo_setup"], env=env, check=True, cwd=ROOT)

    fake = None
    if env.get("ANTHROPIC_API_KEY"):
        say("ANTHROPIC_API_KEY is set: the app talks to Anthropic.")
    else:
        fake = subprocess.Popen(
            [
                python,
                "-m",
                "fake_anthropic",
                "--port",
                str(FAKE_PORT),
                "--ttft-ms",
                "300",
                "--itl-ms",
                "30",
            ],
            env=env,
            cwd=ROOT,
        )
        if not wait_for_port(FAKE_PORT):
            fake.terminate()
            say(f"fake_anthropic did not start on port {FAKE_PORT}")
            return 1
        env["ANTHROPIC_BASE_URL"] = f"http://{HOST}:{FAKE_PORT}"
        say(
            f"No ANTHROPIC_API_KEY: the model is the local fake_anthropic at "
            f"{env['ANTHROPIC_BASE_URL']} (replies describe what the model received)."
        )
    say(
        f"Serving on http://{HOST}:{PORT}/  (chat page /, admin /admin/, API /api/v1/, docs /api/docs)"
    )
    try:
        return subprocess.call([*manage, "runserver", f"{HOST}:{PORT}"], env=env, cwd=ROOT)
    except KeyboardInterrupt:
        return 0
    finally:
        if fake is not None:
            fake.terminate()
            fake.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
