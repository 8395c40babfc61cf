//go:build !soak

package soak

// On reports whether the tests were built with the soak tag: long soaks run at
// full size. It is a constant, so it is safe for concurrent use.
const On = false
