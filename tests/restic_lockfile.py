"""Write a restic lock file as restic does, for a lock whose time a test chooses (a client
paused for longer than restic's 30-minute stale limit).

The format is restic's own, doc/design.rst ("Unpacked Data Format", "Keys, Encryption and MAC",
restic/restic): the plaintext is a JSON object (a '{' first byte is accepted as plain JSON in
repository version 2), stored as IV || AES-256-CTR(ciphertext) || Poly1305-AES MAC of the
ciphertext, keyed by the repository's master key (`restic cat masterkey`), under
locks/<sha256 of the file>. The tests read it back with `restic cat lock` (restic checks the MAC)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest


def write_lock(repo: Path, master_key: dict[str, Any], lock: dict[str, Any]) -> str:
    ciphers = pytest.importorskip("cryptography.hazmat.primitives.ciphers")
    poly1305 = pytest.importorskip("cryptography.hazmat.primitives.poly1305")
    enc = base64.b64decode(master_key["encrypt"])
    k = base64.b64decode(master_key["mac"]["k"])
    r = base64.b64decode(master_key["mac"]["r"])
    iv = os.urandom(16)
    ctr = ciphers.Cipher(ciphers.algorithms.AES(enc), ciphers.modes.CTR(iv)).encryptor()
    ct = ctr.update(json.dumps(lock).encode()) + ctr.finalize()
    # Poly1305-AES: s = AES_k(nonce); the one-time key is r || s (Poly1305 clamps r itself)
    ecb = ciphers.Cipher(ciphers.algorithms.AES(k), ciphers.modes.ECB()).encryptor()
    s = ecb.update(iv) + ecb.finalize()
    mac = poly1305.Poly1305.generate_tag(r + s, ct)
    blob = iv + ct + mac
    sid = hashlib.sha256(blob).hexdigest()
    (repo / "locks" / sid).write_bytes(blob)
    return sid


def lock_doc(when: datetime, *, host: str, user: str, pid: int) -> dict[str, Any]:
    return {
        "time": when.isoformat(),
        "exclusive": False,
        "hostname": host,
        "username": user,
        "pid": pid,
        "uid": 1000,
        "gid": 1000,
    }
