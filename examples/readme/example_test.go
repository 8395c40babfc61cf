// The program hashes at the default bcrypt cost, which under the race detector
// takes minutes on a small machine, and it starts no goroutines of its own for
// the detector to watch: .ci/run runs this example without -race.

//go:build !race

package main

import (
	"fmt"
	"os"
)

// Example runs the README's program in a fresh folder, where it creates
// users.db.
func Example() {
	dir, err := os.MkdirTemp("", "users-readme-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	wd, err := os.Getwd()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := os.Chdir(dir); err != nil {
		fmt.Println(err)
		return
	}
	defer os.Chdir(wd)

	main()
	// Output:
	// ada@example.com user
}
