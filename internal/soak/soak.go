// Package soak tells tests whether to run their long soaks: the crash rounds,
// the large imports and scale walks, the long racing loops. By default those
// tests run at sizes that still check their property in seconds, so that
// the README's test command stays short; building with the soak tag
//
//	go test -race -tags soak ./...
//
// (as .ci/run does) runs them at full size.
package soak
