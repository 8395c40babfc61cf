package prompt

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	env := map[string]string{"ADMIN_PW": "from the environment"}
	getenv := func(k string) string { return env[k] }
	f, err := os.Create(filepath.Join(t.TempDir(), "answers"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("typed into a file\ntyped into a file\n"); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, io.SeekStart)

	t.Run("Environment", func(t *testing.T) {
		got, err := Password(getenv, f, io.Discard, "ADMIN_PW", "Password: ")
		if got, want := got, "from the environment"; err != nil || got != want {
			t.Errorf("Password = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("NeverFromAFile", func(t *testing.T) {
		got, err := Password(getenv, f, io.Discard, "OTHER_PW", "Password: ")
		if err == nil || got != "" || !strings.Contains(err.Error(), "$OTHER_PW") {
			t.Errorf("Password from a file = %q, %v; want an error naming $OTHER_PW", got, err)
		}
	})
}
