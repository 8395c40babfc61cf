#!/usr/bin/env python3
"""Writes sample exports of other systems, for cmd/users TestImportPeers:
kratos.json (Ory Kratos: GET /admin/identities?include_credential=password),
supabase.csv and supabase.jsonl (Supabase: auth.users rows), django.json
(Django: manage.py dumpdata auth.user). The record layouts follow each
system's documentation; the hashes are made by Python's crypt (libxcrypt
bcrypt), hashlib and Debian's argon2, as the systems would make them.

Run from this directory: python3 make.py
Every user's password is "correct horse battery staple".
"""
import base64
import crypt
import hashlib
import json
import subprocess
import warnings

warnings.simplefilter("ignore")
PW = "correct horse battery staple"


def bcrypt(prefix, cost):
    h = crypt.crypt(PW, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**cost))
    return prefix + h[4:]


def argon2id():
    return subprocess.run(["argon2", "kratossaltsalt", "-id", "-t", "1", "-k", "8192", "-p", "1", "-e"],
                          input=PW.encode(), capture_output=True, check=True).stdout.decode().strip()


kratos = [
    {"id": "9f425a8d-7efc-4768-8f23-7647a74fdf13", "schema_id": "default", "state": "active",
     "traits": {"email": "ada@example.com", "name": {"first": "Ada", "last": "Lovelace"}},
     "verifiable_addresses": [{"value": "ada@example.com", "verified": True, "via": "email", "status": "completed"}],
     "credentials": {"password": {"type": "password", "identifiers": ["ada@example.com"], "version": 0,
                                  "config": {"hashed_password": argon2id()}}},
     "created_at": "2024-01-02T03:04:05.000000Z", "updated_at": "2024-01-02T03:04:05.000000Z"},
    {"id": "0a8b4c2e-1d3f-4e5a-9b6c-7d8e9f0a1b2c", "schema_id": "default", "state": "inactive",
     "traits": {"email": "bob@example.com", "username": "bob", "name": "Bob Babbage"},
     "credentials": {"password": {"type": "password", "identifiers": ["bob@example.com"], "version": 0,
                                  "config": {"hashed_password": bcrypt("$2a$", 4)}}},
     "created_at": "2024-01-02T03:04:05.000000Z", "updated_at": "2024-01-02T03:04:05.000000Z"},
]
with open("kratos.json", "w") as f:
    json.dump(kratos, f, indent=2)

supa = [
    {"instance_id": "00000000-0000-0000-0000-000000000000", "id": "5e1c7d1a-2b3c-4d5e-8f90-a1b2c3d4e5f6", "aud": "authenticated",
     "role": "authenticated", "email": "carol@example.com", "encrypted_password": bcrypt("$2a$", 10),
     "email_confirmed_at": "2024-02-03 04:05:06.789+00", "last_sign_in_at": "2024-03-04 05:06:07.89+00",
     "raw_app_meta_data": '{"provider":"email","providers":["email"]}', "raw_user_meta_data": '{"full_name":"Carol Shaw"}',
     "created_at": "2024-02-03 04:05:06.789+00", "updated_at": "2024-02-03 04:05:06.789+00", "phone": None,
     "banned_until": None, "deleted_at": None, "is_anonymous": "false"},
    {"instance_id": "00000000-0000-0000-0000-000000000000", "id": "6f2d8e2b-3c4d-5e6f-9a01-b2c3d4e5f6a7", "aud": "authenticated",
     "role": "authenticated", "email": "dan@example.com", "encrypted_password": bcrypt("$2a$", 4),
     "email_confirmed_at": None, "last_sign_in_at": None,
     "raw_app_meta_data": '{"provider":"email","providers":["email"]}', "raw_user_meta_data": '{"first_name":"Dan","last_name":"Ingalls"}',
     "created_at": "2024-02-03 04:05:06.789+00", "updated_at": "2024-02-03 04:05:06.789+00", "phone": None,
     "banned_until": "2999-01-01 00:00:00+00", "deleted_at": None, "is_anonymous": "false"},
    {"instance_id": "00000000-0000-0000-0000-000000000000", "id": "7a3e9f3c-4d5e-6f70-ab12-c3d4e5f6a7b8", "aud": "authenticated",
     "role": "authenticated", "email": "gone@example.com", "encrypted_password": "",
     "email_confirmed_at": None, "last_sign_in_at": None, "raw_app_meta_data": "{}", "raw_user_meta_data": "{}",
     "created_at": "2024-02-03 04:05:06.789+00", "updated_at": "2024-02-03 04:05:06.789+00", "phone": None,
     "banned_until": None, "deleted_at": "2024-05-06 07:08:09+00", "is_anonymous": "false"},
]
cols = list(supa[0].keys())
with open("supabase.csv", "w") as f:
    import csv
    w = csv.writer(f)
    w.writerow(cols)
    for r in supa:
        w.writerow(["" if r[c] is None else r[c] for c in cols])
with open("supabase.jsonl", "w") as f:
    for r in supa:
        j = dict(r)
        j["raw_user_meta_data"] = json.loads(j["raw_user_meta_data"])  # row_to_json gives jsonb as objects
        j["raw_app_meta_data"] = json.loads(j["raw_app_meta_data"])
        j["is_anonymous"] = j["is_anonymous"] == "true"
        f.write(json.dumps(j) + "\n")

salt = "q9ZqXJ3XhV1T"
k = hashlib.pbkdf2_hmac("sha256", PW.encode(), salt.encode(), 1000, 32)
django = [
    {"model": "auth.user", "pk": 1, "fields": {
        "password": f"pbkdf2_sha256$1000${salt}${base64.b64encode(k).decode()}", "last_login": "2024-04-05T06:07:08.123Z",
        "is_superuser": True, "username": "erin@example.com", "first_name": "Erin", "last_name": "Admin",
        "email": "erin@example.com", "is_staff": True, "is_active": True, "date_joined": "2023-01-01T00:00:00Z",
        "groups": [], "user_permissions": []}},
    {"model": "auth.user", "pk": 2, "fields": {
        "password": "argon2" + subprocess.run(["argon2", "djangosaltsalt", "-id", "-t", "1", "-k", "8192", "-p", "1", "-e"],
                                              input=PW.encode(), capture_output=True, check=True).stdout.decode().strip(),
        "last_login": None, "is_superuser": False, "username": "frank", "first_name": "Frank", "last_name": "Ee",
        "email": "frank@example.com", "is_staff": False, "is_active": False, "date_joined": "2023-01-01T00:00:00Z",
        "groups": [], "user_permissions": []}},
    {"model": "auth.user", "pk": 3, "fields": {
        "password": "!unusablePasswordMarkerXYZ", "last_login": None, "is_superuser": False, "username": "grace",
        "first_name": "Grace", "last_name": "", "email": "grace@example.com", "is_staff": False, "is_active": True,
        "date_joined": "2023-01-01T00:00:00Z", "groups": [], "user_permissions": []}},
]
with open("django.json", "w") as f:
    json.dump(django, f, indent=2)
