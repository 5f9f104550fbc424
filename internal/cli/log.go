package cli

import (
	"fmt"
	"io"
	"log/slog"
)

// Log formats of -log-format: every line serve logs (its start, the
// signals it takes, protocol errors, backend failures, net/http's own
// complaints) is one slog record, in one of these; the access log follows
// the same choice (see accessLog).
const (
	logText = "text" // slog's key=value lines
	logJSON = "json" // one JSON object per line
)

// parseLogFormat checks a -log-format value.
func parseLogFormat(s string) (string, error) {
	switch s {
	case logText, logJSON:
		return s, nil
	}
	return "", fmt.Errorf("bad -log-format %q: want text or json", s)
}

// newLogger returns the command's logger: format lines of level and above
// to w.
func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == logJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
