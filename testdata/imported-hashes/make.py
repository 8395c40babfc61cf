#!/usr/bin/env python3
"""Writes vectors.jsonl: password hashes in the formats of other systems,
each made by a tool no one in this repository wrote, for the tests of
internal/passhash and of the Manager's login with imported hashes.

Run from this directory: python3 make.py > vectors.jsonl
Needs Python 3.11 (hashlib, and crypt, which glibc/libxcrypt backs) and
Debian's argon2 command (apt-get install argon2). The published vectors at
the end are copied from where their "source" says.

Each line: {"format", "password", "hash", "source"}, and "slow" for the
realistic costs; "firebase" lines also carry the project parameters the hash
needs.
"""
import base64
import crypt
import hashlib
import json
import subprocess
import warnings

warnings.simplefilter("ignore")


def b64(b, pad=False):
    s = base64.b64encode(b).decode()
    return s if pad else s.rstrip("=")


SLOW = ["i=600000", "210000$", "i=1300000", "$1000000$", "$260000$", "m=102400", "$2b$12$", "$2b$10$", "ln=14,", "AAEAA9CQ"]


def out(fmt, pw, h, source):
    v = {"format": fmt, "password": pw, "hash": h, "source": source}
    if any(s in h for s in SLOW):
        v["slow"] = True  # a realistic cost: hundreds of milliseconds to check, seconds under -race
    print(json.dumps(v, ensure_ascii=False))


def argon2(pw, salt, variant, t, k, p, raw=False):
    args = ["argon2", salt, "-" + variant, "-t", str(t), "-k", str(k), "-p", str(p), "-r" if raw else "-e"]
    return subprocess.run(args, input=pw.encode(), capture_output=True, check=True).stdout.decode().strip()


PASSWORDS = ["correct horse battery staple", "pässwörd ünïcode 密码"]

for pw in PASSWORDS:
    # crypt(3) SHA-2: default rounds (none written) and explicit rounds.
    out("sha512-crypt", pw, crypt.crypt(pw, "$6$saltsaltsalt"), "python3 crypt.crypt (glibc/libxcrypt)")
    out("sha512-crypt", pw, crypt.crypt(pw, "$6$rounds=10000$" + "sixteencharsaltX"), "python3 crypt.crypt (glibc/libxcrypt)")
    out("sha256-crypt", pw, crypt.crypt(pw, "$5$saltsaltsalt"), "python3 crypt.crypt (glibc/libxcrypt)")
    out("sha256-crypt", pw, crypt.crypt(pw, "$5$rounds=5000$ab"), "python3 crypt.crypt (glibc/libxcrypt)")

    # PBKDF2 in the PHC form (i=, l=) and in passlib's (rounds only).
    salt = hashlib.sha256(pw.encode()).digest()[:16]
    k = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, 600000, 32)
    out("pbkdf2-sha256", pw, f"$pbkdf2-sha256$i=600000,l=32${b64(salt)}${b64(k)}", "python3 hashlib.pbkdf2_hmac")
    k = hashlib.pbkdf2_hmac("sha512", pw.encode(), salt, 210000, 64)
    out("pbkdf2-sha512", pw, f"$pbkdf2-sha512$210000${b64(salt)}${b64(k)}", "python3 hashlib.pbkdf2_hmac")
    k = hashlib.pbkdf2_hmac("sha1", pw.encode(), salt, 1300000, 20)
    out("pbkdf2-sha1", pw, f"$pbkdf2$i=1300000${b64(salt)}${b64(k)}", "python3 hashlib.pbkdf2_hmac")

    # scrypt in the PHC form.
    k = hashlib.scrypt(pw.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    out("scrypt", pw, f"$scrypt$ln=14,r=8,p=1${b64(salt)}${b64(k)}", "python3 hashlib.scrypt")

    # Argon2 PHC strings from the reference implementation's command.
    out("argon2id", pw, argon2(pw, "somesaltsalt", "id", 2, 19456, 1), "Debian argon2 command (reference implementation)")
    out("argon2i", pw, argon2(pw, "othersaltsalt", "i", 3, 4096, 2), "Debian argon2 command (reference implementation)")

    # Django's auth_user.password (django/contrib/auth/hashers.py).
    dsalt = "Vnd3ZDQ5NUhqRUhq"
    k = hashlib.pbkdf2_hmac("sha256", pw.encode(), dsalt.encode(), 1000000, 32)
    out("django-pbkdf2", pw, f"pbkdf2_sha256$1000000${dsalt}${b64(k, pad=True)}", "python3 hashlib.pbkdf2_hmac, Django's layout")
    k = hashlib.pbkdf2_hmac("sha1", pw.encode(), dsalt.encode(), 260000, 20)
    out("django-pbkdf2", pw, f"pbkdf2_sha1$260000${dsalt}${b64(k, pad=True)}", "python3 hashlib.pbkdf2_hmac, Django's layout")
    out("django-argon2", pw, "argon2" + argon2(pw, "djangosaltsalt", "id", 2, 102400, 8), "Debian argon2 command, Django's layout")
    hexdigest = hashlib.sha256(pw.encode()).hexdigest()
    out("django-bcrypt", pw, "bcrypt_sha256$" + crypt.crypt(hexdigest, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**12)), "python3 crypt.crypt bcrypt (libxcrypt) of hashlib.sha256 hexdigest, Django's layout")
    out("django-bcrypt", pw, "bcrypt$" + crypt.crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**10)), "python3 crypt.crypt bcrypt (libxcrypt), Django's layout")

    # Keycloak's password credential (PasswordCredentialModel): pbkdf2-sha256
    # with Keycloak's 64-byte key, and argon2 with its defaults.
    k = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, 27500, 64)
    cred = {"type": "password",
            "secretData": json.dumps({"value": b64(k, True), "salt": b64(salt, True), "additionalParameters": {}}),
            "credentialData": json.dumps({"hashIterations": 27500, "algorithm": "pbkdf2-sha256", "additionalParameters": {}})}
    out("keycloak", pw, json.dumps(cred), "python3 hashlib.pbkdf2_hmac, Keycloak's credential layout")
    raw = bytes.fromhex(argon2(pw, "keycloaksaltsalt", "id", 5, 7168, 1, raw=True))
    cred = {"type": "password",
            "secretData": json.dumps({"value": b64(raw, True), "salt": b64(b"keycloaksaltsalt", True), "additionalParameters": {}}),
            "credentialData": json.dumps({"hashIterations": 5, "algorithm": "argon2", "additionalParameters": {
                "hashLength": ["32"], "memory": ["7168"], "type": ["id"], "version": ["1.3"], "parallelism": ["1"]}})}
    out("keycloak", pw, json.dumps(cred), "Debian argon2 command (raw), Keycloak's credential layout")

# Cheap variants of the formats whose realistic costs above take hundreds of
# milliseconds, for the tests that log in with every format.
pw = PASSWORDS[0]
salt = b"cheap-salt-16byt"
for digest, name, prefix in [("sha256", "pbkdf2-sha256", "$pbkdf2-sha256$i=1000,l=32"), ("sha512", "pbkdf2-sha512", "$pbkdf2-sha512$1000"), ("sha1", "pbkdf2-sha1", "$pbkdf2$i=1000,l=20")]:
    k = hashlib.pbkdf2_hmac(digest, pw.encode(), salt, 1000, int(prefix.rsplit("=", 1)[-1]) if "l=" in prefix else 64)
    out(name, pw, f"{prefix}${b64(salt)}${b64(k)}", "python3 hashlib.pbkdf2_hmac")
k = hashlib.pbkdf2_hmac("sha256", pw.encode(), b"cheapsalt", 1000, 32)
out("django-pbkdf2", pw, f"pbkdf2_sha256$1000$cheapsalt${b64(k, pad=True)}", "python3 hashlib.pbkdf2_hmac, Django's layout")
out("django-argon2", pw, "argon2" + argon2(pw, "djangosaltsalt", "id", 1, 1024, 1), "Debian argon2 command, Django's layout")
out("django-bcrypt", pw, "bcrypt_sha256$" + crypt.crypt(hashlib.sha256(pw.encode()).hexdigest(), crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**4)), "python3 crypt.crypt bcrypt (libxcrypt) of hashlib.sha256 hexdigest, Django's layout")
# The layouts above that had only realistic costs: PBKDF2-SHA1 without l=,
# Django's pbkdf2_sha1 and bcrypt, scrypt.
k = hashlib.pbkdf2_hmac("sha1", pw.encode(), salt, 1000, 20)
out("pbkdf2-sha1", pw, f"$pbkdf2$i=1000${b64(salt)}${b64(k)}", "python3 hashlib.pbkdf2_hmac")
k = hashlib.pbkdf2_hmac("sha1", pw.encode(), b"cheapsalt", 1000, 20)
out("django-pbkdf2", pw, f"pbkdf2_sha1$1000$cheapsalt${b64(k, pad=True)}", "python3 hashlib.pbkdf2_hmac, Django's layout")
out("django-bcrypt", pw, "bcrypt$" + crypt.crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**4)), "python3 crypt.crypt bcrypt (libxcrypt), Django's layout")
k = hashlib.scrypt(pw.encode(), salt=salt, n=2**4, r=8, p=1, dklen=32)
out("scrypt", pw, f"$scrypt$ln=4,r=8,p=1${b64(salt)}${b64(k)}", "python3 hashlib.scrypt")

# Published vectors.
ASPNET = "dotnet/aspnetcore src/Identity/test/Identity.Test/PasswordHasherTest.cs"
for h in [
    "AQAAAAEAACcQAAAAEAABAgMEBQYHCAkKCwwNDg+yWU7rLgUwPZb1Itsmra7cbxw2EFpwpVFIEtP+JIuUEw==",  # v3, HashPassword_Version3
    "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJg==",  # v2, HashPassword_Version2
    "ANXrDknc7fGPpigibZXXZFMX4aoqz44JveK6jQuwY3eH/UyPhvr5xTPeGYEckLxz9A==",  # v2
    "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHw",  # v3 SHA512 50
    "AQAAAAIAAAD6AAAAIJbVi5wbMR+htSfFp8fTw8N8GOS/Sje+S/4YZcgBfU7EQuqv4OkVYmc4VJl9AGZzmRTxSkP7LtVi9IWyUxX8IAAfZ8v+ZfhjCcudtC1YERSqE1OEdXLW9VukPuJWBBjLuw==",
    "AQAAAAAAAAD6AAAAEAhftMyfTJylOlZT+eEotFXd1elee8ih5WsjXaR3PA9M",  # v3 SHA1 250
    "AQAAAAEAA9CQAAAAIESkQuj2Du8Y+kbc5lcN/W/3NiAZFEm11P27nrSN5/tId+bR1SwV8CO1Jd72r4C08OLvplNlCDc3oQZ8efcW+jQ=",  # v3 SHA256 250000
]:
    out("aspnet-identity", "my password", h, ASPNET)

print(json.dumps({"format": "firebase-scrypt", "password": "user1password",
                  "hash": "$firebase-scrypt$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==",
                  "signer_key": "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
                  "salt_separator": "Bw==", "rounds": 8, "mem_cost": 14,
                  "source": "firebase/scrypt README.md (sample project parameters and user1@test.com's exported salt and hash)"}))
