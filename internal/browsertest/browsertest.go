// Package browsertest starts headless Chromium for tests that drive a real
// browser with chromedp: the web app example's, and the root package's test
// of the README's browser JavaScript. It is test code.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of a Chromium or Chrome binary. Without one the
// test is skipped, except under CI=true, where it fails: CI must run the
// browser tests.
func Chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "the browser tests need Chromium: install Debian's chromium package (apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true, so a missing browser is a failure")
	}
	skipNotice.Do(func() {
		// go test ./... shows a passing package's skips only with -v: say it
		// on the terminal too, once, so a missing browser is never silent.
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			fmt.Fprintf(tty, "%s: SKIPPING the browser tests: %s\n", filepath.Base(os.Args[0]), msg)
			tty.Close()
		}
	})
	t.Skip(msg)
	return ""
}

// skipNotice writes the terminal notice of a missing browser once per test
// binary.
var skipNotice sync.Once

// New starts headless Chromium with a fresh profile, kept off the network
// except for the loopback test servers, and returns its chromedp context,
// closed when the test ends. With -short it skips the test, except under
// CI=true.
func New(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("browser tests are skipped with -short")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.IgnoreCertErrors, // the test servers' certificates are self-signed
		chromedp.WindowSize(1000, 700),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,CertificateTransparencyComponentUpdater"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
	}
	// Not t.Context: it is canceled before the cleanups below run, which would
	// kill Chromium instead of letting them close it in order.
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}
