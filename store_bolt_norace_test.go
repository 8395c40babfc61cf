//go:build !race

package users_test

// boltRace reports whether the race detector is on; see store_bolt_race_test.go.
const boltRace = false
