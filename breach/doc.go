// Package breach has two implementations of users.BreachChecker, which tells
// whether a password is known from a data breach (NIST SP 800-63B 5.1.1.2).
//
// # Range
//
// Range asks a service that speaks the k-anonymity range protocol of "Pwned
// Passwords": GET {URL}/range/{the first five hex digits of the password's
// upper-case SHA-1}, answered with lines SUFFIX:COUNT, one per breached hash
// with that prefix. Only those five digits leave the process; the rest of the
// hash is compared locally. Padding is asked for (the Add-Padding header), so
// the answer's size says nothing about the prefix either; padded lines have
// a count of 0 and are ignored.
//
// By default Range fails open: when the service is unreachable, slow or
// answers with an error, the password is let through (and OnError hears why).
// The built-in list of common passwords (users.DefaultPasswordChecker), the
// lockout and the rate limits still hold, and an outage of a third party
// should not stop every sign-up and every password reset, a reset after a
// compromise included. Set FailClosed to refuse passwords instead while the
// service cannot answer.
//
// # List
//
// List is for deployments that cannot reach a service: it reads a local file
// of SHA-1 hashes in the format the range corpus is published in, one HASH or
// HASH:COUNT a line, and keeps the first 8 bytes of each in a sorted array
// searched by bisection. See ReadList for why, and for the false-positive
// rate.
package breach
