// Package passkeytest is a software WebAuthn authenticator for tests: it
// answers the options a Manager's passkey ceremonies return, as a browser
// with an authenticator would, with the JSON of PublicKeyCredential.toJSON().
// It makes ECDSA P-256 keys and "none" attestations, encodes CBOR with
// github.com/fxamacker/cbor/v2 (the module go-webauthn uses), and has knobs
// to misbehave: another origin, no user verification, a counter that stays
// at zero, a clone of its keys.
//
// It is test code: its keys are kept in memory and it checks little of what
// it is asked.
package passkeytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator holds passkeys for one relying party and answers
// ceremonies with them. Set its fields before use; its methods are safe for
// concurrent use.
type Authenticator struct {
	// Origin is the origin the browser reports in the client data, such as
	// "https://example.com".
	Origin string
	// NoUserVerification leaves the UV flag clear: the authenticator proves
	// possession only.
	NoUserVerification bool
	// ZeroCounter makes the signature counter always 0, as some
	// authenticators (and synced passkeys) report it.
	ZeroCounter bool
	// BackupEligible and BackedUp set the BE and BS flags.
	BackupEligible, BackedUp bool
	// Transports are reported at registration; nil means "internal".
	Transports []string
	// ReuseCredential makes Register answer with the passkey the
	// authenticator holds already for the RP ID, if any, instead of a new
	// one, ignoring the options' exclusions: the same credential ID
	// registered again.
	ReuseCredential bool

	mu    sync.Mutex
	creds map[string]*credential // by credential ID
	order []string               // credential IDs, oldest first
}

type credential struct {
	id         []byte
	rpID       string
	userHandle []byte
	key        *ecdsa.PrivateKey
	counter    uint32
}

// New returns an authenticator whose browser reports origin.
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin}
}

// Clone returns another authenticator holding copies of a's keys and
// counters, as a cloned authenticator would: its counters go on from where
// a's were, independently.
func (a *Authenticator) Clone() *Authenticator {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := &Authenticator{Origin: a.Origin, NoUserVerification: a.NoUserVerification, ZeroCounter: a.ZeroCounter,
		BackupEligible: a.BackupEligible, BackedUp: a.BackedUp, Transports: slices.Clone(a.Transports),
		creds: make(map[string]*credential), order: slices.Clone(a.order)}
	for id, c := range a.creds {
		d := *c
		b.creds[id] = &d
	}
	return b
}

// CredentialIDs returns the IDs of the passkeys a holds, in base64url as
// Passkey.ID gives them, oldest first.
func (a *Authenticator) CredentialIDs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, len(a.order))
	for i, id := range a.order {
		out[i] = b64(a.creds[id].id)
	}
	return out
}

// b64 is base64url without padding, WebAuthn's JSON encoding of bytes.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// creationOptions is the part of PublicKeyCredentialCreationOptions (JSON)
// the authenticator reads.
type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Exclude []struct {
		ID string `json:"id"`
	} `json:"excludeCredentials"`
}

// requestOptions is the part of PublicKeyCredentialRequestOptions the
// authenticator reads.
type requestOptions struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rpId"`
	Allow     []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

// ErrNoCredential is returned by Assert when the authenticator holds no
// passkey the options allow, and by Register when it holds one the options
// exclude.
var ErrNoCredential = errors.New("passkeytest: no matching credential")

// Register makes a new passkey for the options of
// navigator.credentials.create() (PasskeyCeremony.PublicKey) and returns the
// browser's answer: the JSON of the new PublicKeyCredential.
func (a *Authenticator) Register(options []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("passkeytest: creation options: %w", err)
	}
	user, err := unb64(o.User.ID)
	if err != nil {
		return nil, fmt.Errorf("passkeytest: user.id: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range o.Exclude {
		if id, err := unb64(x.ID); err == nil && a.creds[string(id)] != nil && !a.ReuseCredential {
			return nil, ErrNoCredential
		}
	}
	c := a.reused(o.RP.ID)
	if c == nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
		c = &credential{id: id, rpID: o.RP.ID, userHandle: user, key: key}
		if a.creds == nil {
			a.creds = make(map[string]*credential)
		}
		a.creds[string(id)] = c
		a.order = append(a.order, string(id))
	}
	id, key := c.id, c.key

	cose, err := coseKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	var attested bytes.Buffer
	attested.Write(make([]byte, 16)) // AAGUID: all zeros, an authenticator that does not say
	_ = binary.Write(&attested, binary.BigEndian, uint16(len(id)))
	attested.Write(id)
	attested.Write(cose)
	authData := a.authData(c, 0x40, attested.Bytes()) // AT: attested credential data included
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, err
	}
	clientData, err := a.clientData("webauthn.create", o.Challenge)
	if err != nil {
		return nil, err
	}
	transports := a.Transports
	if transports == nil {
		transports = []string{"internal"}
	}
	return json.Marshal(map[string]any{
		"id": b64(id), "rawId": b64(id), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64(clientData),
			"attestationObject": b64(att),
			"transports":        transports,
		},
		"clientExtensionResults": map[string]any{},
	})
}

// Assert signs the challenge of the options of navigator.credentials.get()
// with a passkey they allow (for a passwordless sign-in, with no list, the
// oldest the authenticator holds for the RP ID) and returns the browser's
// answer: the JSON of the PublicKeyCredential.
func (a *Authenticator) Assert(options []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("passkeytest: request options: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var c *credential
	if len(o.Allow) > 0 {
		for _, x := range o.Allow {
			if id, err := unb64(x.ID); err == nil && a.creds[string(id)] != nil && a.creds[string(id)].rpID == o.RPID {
				c = a.creds[string(id)]
				break
			}
		}
	} else {
		for _, id := range a.order {
			if a.creds[id].rpID == o.RPID {
				c = a.creds[id]
				break
			}
		}
	}
	if c == nil {
		return nil, ErrNoCredential
	}
	if !a.ZeroCounter {
		c.counter++
	}
	authData := a.authData(c, 0, nil)
	clientData, err := a.clientData("webauthn.get", o.Challenge)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(slices.Clone(authData), sum[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64(c.id), "rawId": b64(c.id), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64(clientData),
			"authenticatorData": b64(authData),
			"signature":         b64(sig),
			"userHandle":        b64(c.userHandle),
		},
		"clientExtensionResults": map[string]any{},
	})
}

// reused returns the credential Register answers with again under
// ReuseCredential, or nil for a new one. a.mu must be held.
func (a *Authenticator) reused(rpID string) *credential {
	if !a.ReuseCredential {
		return nil
	}
	for _, id := range a.order {
		if a.creds[id].rpID == rpID {
			return a.creds[id]
		}
	}
	return nil
}

// authData returns the authenticator data for c with the flags a sets plus
// extra, and then rest.
func (a *Authenticator) authData(c *credential, extra byte, rest []byte) []byte {
	rp := sha256.Sum256([]byte(c.rpID))
	flags := byte(0x01) | extra // UP
	if !a.NoUserVerification {
		flags |= 0x04
	}
	if a.BackupEligible {
		flags |= 0x08
	}
	if a.BackedUp {
		flags |= 0x10
	}
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, c.counter)
	return append(out, rest...)
}

func (a *Authenticator) clientData(typ, challenge string) ([]byte, error) {
	return json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
}

// coseKey encodes an EC2 P-256 public key as a COSE_Key (RFC 9053), with
// CTAP2's canonical CBOR.
func coseKey(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	m := map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]}
	return em.Marshal(m)
}
