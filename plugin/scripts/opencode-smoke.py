#!/usr/bin/env python3
"""Checks that a real OpenCode loads the plugin as `bshare plugin install` puts it.

    python3 scripts/opencode-smoke.py <opencode binary> <bshare binary>

In a throwaway HOME: runs `bshare plugin install`, asks `opencode debug agent build` whether
the server plugin's tools are there, then starts the OpenCode TUI in a pseudo-terminal, types
"/bshare" and looks for the two slash commands in the autocomplete. Needs no model or network.
OpenCode binary: e.g. node_modules/opencode-linux-x64/bin/opencode after `npm i opencode-ai@1.18.33`.
"""

import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time

import fcntl
import termios


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    opencode, bshare = sys.argv[1], sys.argv[2]
    home = tempfile.mkdtemp(prefix="bshare-smoke-")
    project = os.path.join(home, "project")
    os.makedirs(project)
    subprocess.run(["git", "init", "-q", project], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=home, TERM="xterm-256color")
    version = subprocess.run([opencode, "--version"], env=env, capture_output=True, text=True).stdout.strip()
    print(f"OpenCode {version}, HOME={home}")

    install = subprocess.run([bshare, "plugin", "install"], env=env, capture_output=True, text=True)
    print(install.stdout + install.stderr, end="")
    ok = install.returncode == 0

    agent = subprocess.run(
        [opencode, "debug", "agent", "build"], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    tools = all(f'"{t}"' in agent.stdout for t in ("bshare_share", "bshare_unshare"))
    print(f"{'PASS' if tools else 'FAIL'}: server plugin loaded, tools bshare_share and bshare_unshare registered")
    ok &= tools

    screen = tui_screen(opencode, project, env, typed=b"/bshare")
    slash = "/bshare-share" in screen and "/bshare-unshare" in screen
    print(f"{'PASS' if slash else 'FAIL'}: TUI plugin loaded, /bshare-share and /bshare-unshare offered")
    ok &= slash
    return 0 if ok else 1


def tui_screen(opencode: str, cwd: str, env: dict, typed: bytes) -> str:
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(opencode, [opencode], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    out = b""

    def pump(seconds: float, until: bytes = b"") -> None:
        nonlocal out
        end = time.time() + seconds
        while time.time() < end and not (until and until in out):
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    return

    try:
        # The first start in a fresh HOME installs OpenCode's own plugin dependencies first.
        pump(90, until=b"commands")
        pump(2)
        os.write(fd, typed)
        pump(4)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    text = out.decode("utf8", "replace")
    return re.sub(r"\x1b\[[0-9;?<>=]*[a-zA-Z]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)", "", text)


if __name__ == "__main__":
    sys.exit(main())
