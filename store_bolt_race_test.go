//go:build race

package users_test

// boltRace reports whether the race detector is on; TestBoltStore_Scale makes
// fewer users then, since it runs about seven times slower and uses one goroutine.
const boltRace = true
