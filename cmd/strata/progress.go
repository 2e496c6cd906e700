package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress draws a progress bar (what, count of total, percentage,
// rate and, as [elapsed:left], the time left) on w when w is a terminal,
// and nothing at all otherwise: a log or a pipe gets only the command's
// result.
type progress struct {
	bar *progressbar.ProgressBar // nil when off
}

// newProgress starts a bar of total keys (unknown when not above 0).
func newProgress(w io.Writer, what string, total int64) *progress {
	if !isTerminal(w) {
		return &progress{}
	}
	if total <= 0 {
		total = -1
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("keys"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		// No spinner goroutine for an unknown total: the bar redraws
		// when the count moves.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

// set moves the bar to n keys, describing it as what, with the bytes moved
// so far when known (bytes >= 0).
func (p *progress) set(n int64, what string, bytes int64) {
	if p.bar == nil {
		return
	}
	if bytes >= 0 {
		what += ", " + humanize.IBytes(uint64(bytes))
	}
	p.bar.Describe(what)
	p.bar.Set64(n)
}

// done finishes the bar: complete when ok, else left where it stopped, on
// a line of its own so that the error that follows starts a new one.
func (p *progress) done(ok bool) {
	switch {
	case p.bar == nil || p.bar.IsFinished():
	case ok:
		p.bar.Finish()
	default:
		p.bar.Exit() // its completion function ends the line
	}
}

// bytesHuman formats n bytes for people: "512 B", "1.5 KiB", "3.2 GiB".
func bytesHuman(n int64) string {
	if n < 0 {
		return fmt.Sprintf("%d B", n)
	}
	return humanize.IBytes(uint64(n))
}
