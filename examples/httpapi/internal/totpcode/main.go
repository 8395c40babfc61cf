// Command totpcode prints the TOTP code an authenticator app would show for a
// base32 secret (RFC 6238: SHA-1, 6 digits, 30-second steps, as the users
// library enrols), for examples/httpapi/smoke.sh, which has no oathtool.
//
//	totpcode SECRET              the code of now
//	totpcode -offset 30s SECRET  the code of the next step
//	totpcode -wrong SECRET       a code no step within one of now accepts
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

func main() {
	offset := flag.Duration("offset", 0, "the code of now plus this")
	wrong := flag.Bool("wrong", false, "print a code that the steps around now all refuse")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: totpcode [-offset D] [-wrong] SECRET")
		os.Exit(2)
	}
	secret := flag.Arg(0)
	now := time.Now().Add(*offset)
	code := func(t time.Time) string {
		c, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			fmt.Fprintln(os.Stderr, "totpcode:", err)
			os.Exit(1)
		}
		return c
	}
	if !*wrong {
		fmt.Println(code(now))
		return
	}
	// Steps from a minute back to a minute ahead, so that the code stays wrong
	// while the script uses it.
	var near []string
	for d := -60 * time.Second; d <= 60*time.Second; d += 30 * time.Second {
		near = append(near, code(now.Add(d)))
	}
	for n := 0; ; n++ {
		if c := fmt.Sprintf("%06d", n); !slices.Contains(near, c) {
			fmt.Println(c)
			return
		}
	}
}
