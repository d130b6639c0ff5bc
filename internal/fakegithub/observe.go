package fakegithub

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// Update is one ref update a push asked for, as git receive-pack's commands
// carry it.
type Update struct {
	Old, New, Ref string
	RemoteAddr    string // host:port the push came from
	// Forced is set after the push when the ref moved to a commit that does
	// not contain Old: a non-fast-forward update of an existing branch.
	Forced bool
}

// Publish is one push or pull request creation seen, for an observer that
// checks who was allowed to publish at that moment.
type Publish struct {
	Kind       string // "push" or "pr"
	Ref        string // refs/heads/<branch> for a push, the head branch for a PR
	RemoteAddr string
}

// NewOn is New serving on ln (for example a listener in another network
// namespace) instead of a loopback port.
func NewOn(t testing.TB, token string, ln net.Listener) *Server {
	t.Helper()
	return newServer(t, token, ln)
}

// Observe installs f, called synchronously for every push (before git
// receives it) and every pull request creation (before it is recorded).
func (s *Server) Observe(f func(Publish)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observe = f
}

// Updates returns every ref update pushed so far, oldest first.
func (s *Server) Updates() []Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Update(nil), s.updates...)
}

// ForcePushes counts pushed updates that rewrote a branch (non-fast-forward).
func (s *Server) ForcePushes() int {
	n := 0
	for _, u := range s.Updates() {
		if u.Forced {
			n++
		}
	}
	return n
}

func (s *Server) notify(p Publish) {
	s.mu.Lock()
	f := s.observe
	s.mu.Unlock()
	if f != nil {
		f(p)
	}
}

const zeroID = "0000000000000000000000000000000000000000"

// receiveCommands reads the ref updates at the head of a receive-pack
// request body: pkt-lines "<old> <new> <ref>[\0caps]" up to a flush packet.
// The body is put back for git.
func receiveCommands(r *http.Request) []Update {
	if r.Header.Get("Content-Encoding") != "" { // git does not compress pushes
		return nil
	}
	raw, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	var out []Update
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		var head [4]byte
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return out
		}
		if _, err := hex.DecodeString(string(head[:])); err != nil {
			return out
		}
		n, err := strconv.ParseUint(string(head[:]), 16, 16)
		if err != nil || n == 0 || n < 4 {
			return out // flush: the commands end
		}
		line := make([]byte, n-4)
		if _, err := io.ReadFull(br, line); err != nil {
			return out
		}
		cmd, _, _ := strings.Cut(strings.TrimRight(string(line), "\n"), "\x00")
		f := strings.Fields(cmd)
		if len(f) != 3 {
			return out
		}
		out = append(out, Update{Old: f[0], New: f[1], Ref: f[2], RemoteAddr: r.RemoteAddr})
	}
}

// recordUpdates notes the pushed updates once git has applied them, marking
// those that moved an existing branch to a commit not containing its old tip.
func (s *Server) recordUpdates(bare string, ups []Update) {
	for i, u := range ups {
		if u.Old == zeroID || u.New == zeroID {
			continue
		}
		tip, err := s.git(bare, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", u.Ref)
		if err != nil || strings.TrimSpace(tip) != u.New {
			continue // refused: the branch did not move
		}
		if _, err := s.git(bare, nil, "merge-base", "--is-ancestor", u.Old, u.New); err != nil {
			ups[i].Forced = true
		}
	}
	s.mu.Lock()
	s.updates = append(s.updates, ups...)
	s.mu.Unlock()
}

// startOn serves s on ln, or on a loopback port when ln is nil.
func (s *Server) startOn(t testing.TB, ln net.Listener) {
	if ln == nil {
		s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	} else {
		s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
		_ = s.srv.Listener.Close()
		s.srv.Listener = ln
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
}
