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
// CI=true. A package with several browser tests shares one browser instead:
// see Tab.
func New(t *testing.T) context.Context {
	t.Helper()
	skipShort(t)
	opts := options(Chromium(t), t.TempDir())
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

// Tab returns the chromedp context of a new tab in a new browser context of
// the test binary's shared headless Chromium: the tab has its own cookies,
// storage and cache, as another browser profile would, and closes when the
// test ends. The browser starts on the first call (starting Chromium costs
// more than most tests' pages) and is closed by Main. Tab skips or fails the
// test as New does. It is safe for concurrent use by parallel tests.
func Tab(t *testing.T) context.Context {
	t.Helper()
	skipShort(t)
	path := Chromium(t)
	browser, err := shared.start(path)
	if err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatalf("opening a tab: %v", err)
	}
	return ctx
}

// Main runs the tests and then closes the shared browser that Tab started, if
// any, and exits with the tests' status. A package whose tests call Tab calls
// it from its TestMain:
//
//	func TestMain(m *testing.M) { browsertest.Main(m) }
//
// (Without it the browser is killed when the test binary exits, and its
// profile folder is left behind.)
func Main(m *testing.M) {
	code := m.Run()
	shared.close()
	os.Exit(code)
}

// shared is the browser that Tab shares.
var shared sharedBrowser

type sharedBrowser struct {
	mu      sync.Mutex
	started bool
	ctx     context.Context // the first tab's: canceling it closes the browser
	err     error
	stop    []func()
	dir     string
}

// start starts the shared browser on its first call and returns its first
// tab's context, or the error that starting it gave.
func (b *sharedBrowser) start(path string) (context.Context, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return b.ctx, b.err
	}
	b.started = true
	b.dir, b.err = os.MkdirTemp("", "browsertest-")
	if b.err != nil {
		return nil, b.err
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), options(path, b.dir)...)
	ctx, cancel := chromedp.NewContext(alloc)
	b.stop = []func(){cancel, cancelAlloc}
	if b.err = chromedp.Do(ctx); b.err == nil {
		b.ctx = ctx
	}
	return b.ctx, b.err
}

// close closes the shared browser, if it was started, and removes its
// profile.
func (b *sharedBrowser) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, stop := range b.stop {
		stop()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("browser tests are skipped with -short")
	}
}

// options are the flags of a headless Chromium at path with its profile in
// dir.
func options(path, dir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(dir),
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
		// Fewer renderer processes: the tests' pages come from loopback servers
		// and need no site isolation; on the web app's browser tests these two
		// saved about a tenth of Chromium's CPU.
		chromedp.Flag("renderer-process-limit", "1"),
		chromedp.Flag("disable-site-isolation-trials", true),
	}
}
