/*
Package users is an embeddable user-management and authentication library:
accounts, passwords, sessions, roles, account recovery and admin queries inside
your own Go program, with no service to deploy.

# Overview

A Manager does the work over a Store:

	store, err := users.OpenBoltStore("users.db", nil) // or users.NewMemoryStore()
	m, err := users.New(store, nil)                     // nil: documented defaults
	u, err := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "…"})
	s, err := m.Login(ctx, "ada@example.com", "…")      // s.Token is the bearer secret
	s, err = m.ValidateToken(ctx, s.Token)              // s.User is the user as it is now

Every method takes a context.Context first and checks it before doing work.
Errors are sentinels (ErrNotFound, ErrDuplicateEmail, ErrInvalidCredentials, …)
to test with errors.Is, and *ValidationError, which names the refused field,
gives a stable ValidationCode for programs (to translate, say) beside an English
Reason, and matches ErrInvalidInput. Bad input is refused before anything is
stored. Create, Import, Invite, Update, Find and Count check every field before
they refuse: input with several bad fields gives ValidationErrors, one
*ValidationError per field in the input's field order (FieldErrors lists
them), so a form can show every error at once.

# Stores

The Manager keeps all policy (validation, normalisation, hashing, tokens); a
Store keeps data and makes each operation atomic. The stores:

  - MemoryStore (NewMemoryStore): in process, not durable; for tests, your own
    included, and the reference implementation of the contract.
  - BoltStore (OpenBoltStore, NewBoltStore): bbolt, embedded and durable, for
    one process on one machine. The default for production on one machine.
    BoltStore.Backup takes a consistent backup while the application serves;
    the command github.com/userkit/users/cmd/users administers a file that no
    process holds (first admin, import, export, check, backup).
  - For several processes or machines, a PostgreSQL store lives in its own module
    (github.com/userkit/users/postgres), so that importing this package never
    pulls in a database driver; github.com/userkit/users/postgres/cmd/users is
    the admin command built with it.

Users move between stores, and in from other systems, without loss: NewUser
takes a user's ID, the other system's ID (ExternalID, unique, found by
GetByExternalID), a verified email, the times, StatusInvited and NoPassword,
and the command's export -with-hashes piped into import gives the same users
back.

A Store of your own passes the conformance suite in package storetest before it
is handed to New. Store is made of one interface per domain (UserStore,
SessionStore, ThrottleStore, TokenStore, AuditStore, SecondFactorStore), each
with its own contract; the Manager uses every Store through them alone, so a
store of yours runs the same paths as the built-in ones.

# The bbolt store

OpenBoltStore opens (or creates) a bbolt file; NewBoltStore uses an open
*bbolt.DB, sharing the file with the application's own buckets. Three errors
belong to this store alone and are defined beside it (store_bolt.go), not with
the errors of the Manager:

  - ErrFileInUse: OpenBoltStore could not lock the file within
    BoltOptions.Timeout (default 1 second) because another process or store
    holds it. bbolt allows one writer process per file.
  - ErrSchemaTooNew: the file was written by a newer version of this package;
    it is left untouched.
  - ErrCorrupt: BoltStore.Check found the file damaged or its indexes at odds
    with its records, or a method came upon such damage while reading.

Their messages start with "users: bolt file" so that a log line says which store
spoke. A program that also uses the MemoryStore or the PostgreSQL store never
sees them from those.

# Sessions

Login returns a Session whose Token carries 256 bits from crypto/rand; stores
keep only its SHA-256. Sessions end at an absolute limit (Options.SessionTTL,
default 24 hours) and optionally after inactivity (Options.SessionIdleTimeout).
Logout ends one, LogoutAll every one of a user, and changing a password, resetting
it, deactivating or removing the user ends them all: no session outlives a
password change. A session keeps the IP address and user agent of its login
(WithClient; the HTTP middleware sets them), so Sessions can show where a user
is signed in, and RevokeOtherSessions ends all but the current one.

A sign-in may ask for a remembered session ("remember me": 30 days, ended by 7
days without use) or a shorter one with SessionOptions in its context
(WithSessionOptions); use moves a session's idle timeout, never its absolute
end. With Options.TrustDevices, a session whose second factor is recent may
trust its device (TrustDevice): a password login presenting that device token
(WithDeviceToken) skips the second step, until a password change, LogoutAll,
a suspension or a change of second factor revokes it.

A session also records when its user last proved a password or a factor for
it (Session.AuthenticatedAt: at login, by Reauthenticate, by StepUp). Enrolling
or removing a second factor, new recovery codes, and changing a password or an
email, made with a Session in the context (Middleware puts it there), need that
proof within Options.ReauthWindow (10 minutes) or return ErrReauthRequired: a
stolen session alone cannot lock its owner out.

# Audit and events

Every change the Manager makes, and every outcome of a login, writes an
AuditEntry (who, what, when, from which client; never a secret) through the
Store in the same transaction as the change. Manager.Audit pages through them
by user, actor, type and time; Options.AuditRetention bounds their age.
One user's entries are listed in the order their changes committed, and
Options.OnEvent receives each entry after its commit, in commit order per
user, from a bounded queue, so a slow or failing hook never delays a login.
Managers in several processes sharing the PostgreSQL store keep the log's
order too: the store gives an entry a later ID (and Time) when another
process's entry of that user committed first, and the hook sees that ID.
User.LastActiveAt moves with logins and session use, and Filter.ActiveSince
and Filter.InactiveSince find active and dormant accounts. The module
github.com/userkit/users/otel bridges these events to OpenTelemetry metrics and
spans, and the package github.com/userkit/users/mail renders the mail of each
account flow (a Delivery) and of the security notices an event calls for.

# Second factor

A user can add a TOTP factor (BeginTOTP, then ConfirmTOTP with a code), whose
secret is sealed with AES-256-GCM under Options.MFAKeys, and gets ten
single-use recovery codes. From then on Login and LoginWithMagicLink return a
*Challenge (an error matching ErrSecondFactorRequired) instead of a session,
and CompleteLogin turns the challenge and a code into the session. Sessions
record how they were made (Session.Methods, Session.SecondFactorAt); StepUp
proves the factor again and Manager.RequireSecondFactor guards routes that
need it.

# Sign in with a provider

Options.Providers lists external identity providers: OpenID Connect ones by
their issuer (Google and Microsoft presets) and plain OAuth 2 ones through an
OAuth2Adapter (GitHub). BeginProviderSignIn returns the provider's URL and a
binding for a cookie; FinishProvider checks the callback (state, binding, the
iss parameter, the code with PKCE, the ID token) and signs a user in, creates
one (Provider.AllowSignUp), or answers ProviderLinkRequired when an account
has the email. A signed-in user links providers with BeginProviderLink and
removes them with UnlinkIdentity; a linked identity is a credential of kind
CredentialOIDC. A provider's sign-in is one factor: a user with a second
factor still completes it.

# Passkeys

With Options.Passkeys set (the relying party's ID and origins), users register
passkeys (BeginPasskeyRegistration, FinishPasskeyRegistration) and sign in with
them without a password (BeginPasskeyLogin, FinishPasskeyLogin), as a second
factor (BeginPasskeySecondFactor, then CompleteLogin) and for step-up
(BeginPasskeyStepUp, then StepUp). Each Begin method returns the options for
the browser's navigator.credentials call as JSON, and each Finish takes the
credential's JSON back; github.com/go-webauthn/webauthn verifies them. A
passkey is a credential of kind CredentialPasskey; each challenge is a
CeremonyRecord in the store, single-use and expiring.

# Security

Passwords are normalised with NFKC, must be 8 to 128 characters, are checked
against the most common passwords and the user's own email and username (and,
with Options.BreachChecker, against breach corpora: see package
github.com/userkit/users/breach), and are hashed with bcrypt (cost 12 by default) over an HMAC-SHA-256 pre-hash, so
nothing is ever truncated. Login answers an unknown identifier and a wrong
password alike, after one bcrypt comparison each, and locks an identifier after
repeated failures: each attempt is counted in the store before bcrypt runs, so
concurrent guesses cannot outrun the lock, locks grow longer as they recur, and
100 failures in a row lock an account until a reset or Manager.Unlock
(Manager.LockState shows support staff why someone cannot log in). The
public flows are also rate limited per client address and per identifier
(Options.RateLimits, Manager.Limit), counted atomically in the store so that
instances over one database share the counts; TrustedProxies finds the
client's address behind reverse proxies. Emails and
usernames must be ASCII: nothing is case-folded into someone else's address.
The request methods return a Delivery whose To is the stored address: send
there, never to the address typed; for an email that names no active user
they do the same store work, so nothing after the answer tells either. See
SECURITY.md for the threat model and
every choice.

# HTTP

TokenFromRequest reads a bearer token (or a named cookie) from a request;
Manager.Middleware validates it and puts the Session into the request's context
(FromContext gets it back), answering 401 otherwise; RequireRole answers 403.
HTTPError and WriteError turn this package's errors into a status and a stable
code, in the error envelope {"success":false,"error":{"code","message","field","reason"}},
where "reason" is a refused field's ValidationCode.
examples/httpapi is a whole REST API built from these pieces.

These helpers stay in this package, rather than in a package of their own, for
three reasons. They import only net/http from the standard library, so they cost
an importer no dependency. Middleware is a method of Manager and HTTPError maps
this package's own errors, so they change whenever the Manager or the errors do,
in the same commit. And the part that is one application's choice, the
{"success":false,...} envelope, is WriteError alone: an application with its own
envelope calls HTTPError for the status, code and field and writes its own body,
and uses TokenFromRequest, Middleware, FromContext and RequireRole unchanged.

# Concurrency

A Manager and every Store in this module are safe for concurrent use. Uniqueness
of email and username is checked and written in one atomic step, updates are
atomic read-modify-writes (concurrent updates of different fields all survive),
and bcrypt never runs while a store lock or transaction is held. At most
Options.MaxConcurrentHashes bcrypt operations run at once, so a burst of logins
cannot starve token validation.
*/
package users
