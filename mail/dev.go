package mail

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// DevMailer is the mailer for development: it writes each whole message
// (headers, the text body, and the HTML body when HTML is set) to W instead
// of sending it, so a developer can follow the links. Never use it with real
// users: the links it writes sign people in. It is safe for concurrent use;
// each message is written with one Write call.
type DevMailer struct {
	W    io.Writer // where messages go; nil: io.Discard
	HTML bool      // write the HTML body too

	mu sync.Mutex
}

// Send writes m to d.W and returns the writer's error.
func (d *DevMailer) Send(_ context.Context, m Message) error {
	var b strings.Builder
	fmt.Fprintf(&b, "----- dev mailer: not sent -----\nTo: %s\nSubject: %s\nKind: %s\n\n", m.To, m.Subject, m.Kind)
	b.WriteString(strings.TrimRight(m.Text, "\n"))
	b.WriteString("\n")
	if d.HTML && m.HTML != "" {
		b.WriteString("----- HTML -----\n")
		b.WriteString(strings.TrimRight(m.HTML, "\n"))
		b.WriteString("\n")
	}
	b.WriteString("----- end -----\n")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.W == nil {
		return nil
	}
	_, err := io.WriteString(d.W, b.String())
	return err
}
