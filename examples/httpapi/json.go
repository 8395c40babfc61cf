package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/userkit/users"
)

// The JSON of every route: reading a request body, and writing the success
// and error envelopes.

// envelope is every success body: {"success":true,"data":…,"message":…}.
type envelope struct {
	Success    bool        `json:"success"`
	Data       any         `json:"data,omitempty"`
	Pagination *pagination `json:"pagination,omitempty"`
	Message    string      `json:"message,omitempty"`
}

type pagination struct {
	Page  int `json:"page"`
	Limit int `json:"limit"`
	Total int `json:"total"`
	Pages int `json:"pages"`
}

// timestamp is ISO 8601 in UTC to the second, as in the document.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		users.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError writes the error envelope for an error of this API's own (not of
// the users package, which users.WriteError handles).
func writeError(w http.ResponseWriter, status int, code, message, field string) {
	writeJSON(w, status, errorEnvelope{Error: apiError{Code: code, Message: message, Field: field}})
}

// errorEnvelope is every error body: {"success":false,"error":{…}}.
type errorEnvelope struct {
	Success bool     `json:"success"`
	Error   apiError `json:"error"`
}

// apiError is the error object. Challenge is set only with the code
// mfa_required, LinkRequired only with link_required (providers.go).
type apiError struct {
	Code         string           `json:"code"`
	Message      string           `json:"message"`
	Field        string           `json:"field,omitempty"`
	Challenge    *apiChallenge    `json:"challenge,omitempty"`
	LinkRequired *apiLinkRequired `json:"link_required,omitempty"`
}

// fail answers with a users package error. It logs what the client is not
// told: the text of a 500. An ErrNotFound here is always about a user.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, _, _ := users.HTTPError(err)
	switch {
	case errors.Is(err, users.ErrMFANotConfigured):
		writeError(w, http.StatusNotImplemented, codeMFANotConfigured, "Two-factor authentication is not configured on this server", "")
		return
	case status == http.StatusInternalServerError:
		s.logger().Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	case errors.Is(err, users.ErrNotFound):
		writeError(w, http.StatusNotFound, users.CodeNotFound, "User not found", "")
		return
	}
	users.WriteError(w, err)
}

// invalid answers 400 invalid_request on field, with code as its "reason".
func invalid(w http.ResponseWriter, field string, code users.ValidationCode, reason string) {
	users.WriteError(w, &users.ValidationError{Field: field, Code: code, Reason: reason})
}

func forbidden(w http.ResponseWriter, message string) {
	writeError(w, http.StatusForbidden, users.CodeForbidden, message, "")
}

// rename gives the refused fields of err (users.FieldErrors: one, or every
// one of a users.ValidationErrors) the names this API uses for them
// (avatar_url is avatar here, and so on), keeping their order; two library
// fields of one API field (first_name and last_name of "name") give one
// error. An err with no refused field, or none to rename, is returned as is.
func rename(err error, names map[string]string) error {
	var out users.ValidationErrors
	renamed := false
	seen := make(map[string]bool)
	for _, ve := range users.FieldErrors(err) {
		field, ok := names[ve.Field]
		if !ok {
			field = ve.Field
		}
		renamed = renamed || ok
		if !seen[field] {
			seen[field] = true
			out = append(out, &users.ValidationError{Field: field, Code: ve.Code, Reason: ve.Reason})
		}
	}
	switch {
	case !renamed:
		return err
	case len(out) == 1:
		return out[0]
	}
	return out
}

// decode reads r's body, which must be one JSON object of at most MaxBodyBytes
// with no unknown fields, into dst. On failure it answers the request with the
// error envelope and returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "Content-Type must be application/json", "")
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		writeError(w, http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "The body must be UTF-8", "")
		return false
	}
	limit := s.MaxBodyBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
			var mbe *http.MaxBytesError
			if errors.As(terr, &mbe) {
				err = terr
			}
		}
	}
	if err == nil {
		return true
	}

	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		mbe    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("The body must be at most %d bytes", mbe.Limit), "")
	case errors.Is(err, io.EOF):
		invalid(w, "body", users.ValidationRequired, "must be a JSON object; it is empty")
	case errors.Is(err, errTrailing):
		invalid(w, "body", users.ValidationMalformed, "must be a single JSON object with nothing after it")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		invalid(w, "body", users.ValidationMalformed, "is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			invalid(w, "body", users.ValidationMalformed, "must be a JSON object")
		} else {
			invalid(w, typ.Field, users.ValidationMalformed, "must be "+jsonKind(typ.Type.Kind().String())+", not "+typ.Value)
		}
	default:
		if f, ok := unknownField(err); ok {
			invalid(w, f, codeUnknownField, "is not a known field")
		} else {
			invalid(w, "body", users.ValidationMalformed, "could not be read as JSON")
		}
	}
	return false
}

var errTrailing = errors.New("trailing data")

// jsonKind names the JSON type of a Go kind, for messages.
func jsonKind(k string) string {
	switch {
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "slice", k == "array":
		return "an array"
	}
	return "an object"
}

// unknownField returns the field named by encoding/json's DisallowUnknownFields
// error, which has no type of its own.
func unknownField(err error) (string, bool) {
	rest, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	f, err := strconv.Unquote(rest)
	if err != nil {
		return "", false
	}
	return f, true
}

// required answers 400 on the first of the (field, value) pairs whose value is
// empty, and reports whether all were given.
func required(w http.ResponseWriter, pairs ...string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			invalid(w, pairs[i], users.ValidationRequired, "is required")
			return false
		}
	}
	return true
}

// confirmed answers 400 on confirm_password unless it is given and equal to
// newPassword, and reports whether it is. It runs before the library is asked,
// so a typo costs no failed-login count and no bcrypt work.
func confirmed(w http.ResponseWriter, newPassword, confirm string) bool {
	if !required(w, "confirm_password", confirm) {
		return false
	}
	if confirm != newPassword {
		invalid(w, "confirm_password", codeMismatch, "must be the same as new_password")
		return false
	}
	return true
}
