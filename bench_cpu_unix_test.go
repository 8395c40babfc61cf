//go:build unix

package users_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used, user and system, on
// all its threads: the work a benchmark did, whatever else the machine runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
