package breach

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultURL is the base URL Range asks when its URL is empty: the public
// Pwned Passwords service.
const DefaultURL = "https://api.pwnedpasswords.com"

// DefaultTimeout bounds one range query when Range.Timeout is zero.
const DefaultTimeout = 3 * time.Second

// maxRangeBody bounds the answer read: a padded range is some 1,000 lines of
// 40 bytes or less, so 1 MiB is far more than a real answer needs.
const maxRangeBody = 1 << 20

// ErrUnavailable is matched (errors.Is) by the error Range.Breached returns
// in FailClosed mode when the service could not answer: a network error, a
// timeout, a status other than 200, or an answer that does not parse.
var ErrUnavailable = errors.New("breach: range service unavailable")

// Range is a users.BreachChecker that asks a k-anonymity range service (see
// the package documentation). The zero value asks DefaultURL with
// http.DefaultClient, DefaultTimeout and fails open. A Range must not be
// changed once in use; it is safe for concurrent use.
type Range struct {
	// URL is the service's base URL, without the trailing "/range".
	// Default DefaultURL.
	URL string

	// Client makes the requests. Default http.DefaultClient.
	Client *http.Client

	// Timeout bounds each query, on top of the caller's context. Default
	// DefaultTimeout; negative is not allowed and counts as the default.
	Timeout time.Duration

	// FailClosed makes Breached return an error matching ErrUnavailable when
	// the service could not answer, so that the Manager refuses the password.
	// Default false (fail open): Breached reports the password as not
	// breached, and calls OnError.
	FailClosed bool

	// OnError, if not nil, is called with every failure to get an answer, in
	// both modes, so that an outage is seen even while passwords go through.
	// It must be safe for concurrent use.
	OnError func(error)
}

// Breached reports whether password's SHA-1 is in the range the service
// returns for its first five hex digits with a count above zero. When the
// service cannot answer it returns false and nil (the default), or false and
// an error matching ErrUnavailable (FailClosed). When ctx itself is done, it
// returns ctx's error in both modes: the caller gave up, the service did not
// fail.
func (c *Range) Breached(ctx context.Context, password string) (bool, error) {
	sum := sha1.Sum([]byte(password))
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	prefix, suffix := h[:5], h[5:]
	found, err := c.query(ctx, prefix, suffix)
	if err == nil {
		return found, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	if c.OnError != nil {
		c.OnError(err)
	}
	if c.FailClosed {
		return false, err
	}
	return false, nil
}

// query asks for the range of prefix and looks for suffix in it.
func (c *Range) query(ctx context.Context, prefix, suffix string) (bool, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base := c.URL
	if base == "" {
		base = DefaultURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/range/"+prefix, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Add-Padding", "true")
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %s", resp.Status)
	}
	return findSuffix(io.LimitReader(resp.Body, maxRangeBody+1), suffix)
}

// findSuffix reads a range answer and reports whether suffix (35 upper-case
// hex digits) is in it with a count above zero. It reads the whole answer, so
// that a malformed or overlong one is an error whatever it holds.
func findSuffix(r io.Reader, suffix string) (bool, error) {
	sc := bufio.NewScanner(r)
	found, read := false, 0
	for sc.Scan() {
		line := sc.Bytes()
		read += len(line) + 1
		if read > maxRangeBody {
			return false, errors.New("range answer too long")
		}
		s := strings.TrimSpace(string(line))
		if s == "" {
			continue
		}
		got, count, ok := strings.Cut(s, ":")
		n, err := strconv.ParseInt(count, 10, 64)
		if !ok || len(got) != 35 || err != nil || n < 0 {
			return false, fmt.Errorf("malformed range line %q", s)
		}
		if n > 0 && strings.EqualFold(got, suffix) {
			found = true
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return found, nil
}
