//go:build unix

package main

import "syscall"

// minorFaults returns the process's minor page faults so far: for the bbolt
// store, each is the first touch of a page of its file through the map.
func minorFaults() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return int64(ru.Minflt)
}
