package users

import (
	"errors"
	"net/http"
)

// Error codes of passkeys (see HTTPError).
const (
	CodePasskeyRefused        = "passkey_refused"         // 401: the browser's answer did not verify
	CodePasskeyCloned         = "passkey_cloned"          // 401: the signature counter did not increase
	CodePasskeysNotConfigured = "passkeys_not_configured" // 501: Options.Passkeys is not set
)

// passkeyHTTPError is HTTPError for the passkey errors; ok is false for
// another error.
func passkeyHTTPError(err error) (status int, code string, ok bool) {
	switch {
	case errors.Is(err, ErrPasskeyCloned): // before ErrPasskeyRefused, which it matches
		return http.StatusUnauthorized, CodePasskeyCloned, true
	case errors.Is(err, ErrPasskeyRefused):
		return http.StatusUnauthorized, CodePasskeyRefused, true
	case errors.Is(err, ErrPasskeysNotConfigured):
		return http.StatusNotImplemented, CodePasskeysNotConfigured, true
	}
	return 0, "", false
}

// passkeyMessage is message for the passkey codes, or "".
func passkeyMessage(code string) string {
	switch code {
	case CodePasskeyRefused:
		return "The passkey was not accepted"
	case CodePasskeyCloned:
		return "The passkey was not accepted: it may have been copied"
	case CodePasskeysNotConfigured:
		return "Passkeys are not enabled"
	}
	return ""
}
