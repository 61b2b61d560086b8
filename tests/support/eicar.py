"""The EICAR anti-virus test file: harmless, but every scanner reports it as malware.

Built from two halves so this source file itself is not flagged by scanners."""

from __future__ import annotations

EICAR = (r"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*").encode()
