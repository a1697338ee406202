"""`openims account set-mfa` driven as an operator would: read the key it prints, answer with two
consecutive codes an authenticator app (pyotp) computes from it."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyotp

from tests.support import Server


@dataclass
class SetMfa:
    returncode: int
    stdout: str
    stderr: str
    seed: str | None = None
    uri: str | None = None
    qr_path: Path | None = None
    # The QR file's mode while the command waited for the codes.
    qr_mode: int | None = None
    # The time step of the second binding code (the last step accepted when the binding succeeded).
    step: int | None = None


def code(seed: str, step: int) -> str:
    return pyotp.TOTP(seed).generate_otp(step)


def current_step() -> int:
    return int(time.time() // 30)


def wrong_code(seed: str, around: int) -> str:
    """A well-formed code that none of the steps near `around` produces."""
    near = {code(seed, s) for s in range(around - 3, around + 4)}
    return next(c for c in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if c not in near)


def set_mfa(server: Server, account: str | None, right_codes: bool = True) -> SetMfa:
    """Run `openims account set-mfa [--account account]`, answering on stdin once the key is printed."""
    command = [sys.executable, "-m", "openims", "--data-dir", str(server.data_dir), "account", "set-mfa"]
    if account is not None:
        command += ["--account", account]
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env
    )
    assert proc.stdout is not None
    printed = ""
    while "Then enter" not in printed:
        line = proc.stdout.readline()
        if not line:  # it ended without asking (a refusal)
            out, err = proc.communicate(timeout=60)
            return SetMfa(proc.returncode, printed + out, err)
        printed += line
    seed = re.search(r"Base32 seed: (\S+)", printed)
    uri = re.search(r"otpauth URI: (\S+)", printed)
    qr = re.search(r"QR code:\s+(\S+)", printed)
    assert seed and uri and qr, printed
    qr_path = Path(qr.group(1))
    qr_mode = stat.S_IMODE(qr_path.stat().st_mode)
    step = current_step()
    answer = (
        f"{code(seed.group(1), step - 1)}\n{code(seed.group(1), step)}\n"
        if right_codes
        else f"{wrong_code(seed.group(1), step)}\n{wrong_code(seed.group(1), step)}\n"
    )
    out, err = proc.communicate(answer, timeout=60)
    return SetMfa(proc.returncode, printed + out, err, seed.group(1), uri.group(1), qr_path, qr_mode, step)


def unset_mfa(server: Server, account: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "openims",
            "--data-dir",
            str(server.data_dir),
            "account",
            "unset-mfa",
            "--account",
            account,
        ],
        capture_output=True,
        text=True,
        env=server.env,
        timeout=60,
        check=False,
    )
