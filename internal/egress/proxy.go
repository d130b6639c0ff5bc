// Package egress is the forward proxy that is a task container's only way out
// under --network allowlist. The agent's container has no network at all; it
// reaches this proxy through a unix socket in a per-container folder, mounted
// into both, to which a forwarder inside the agent's container pipes a
// loopback port. The proxy allows CONNECT and plain HTTP to the configured
// domains and refuses everything else, logging each refusal as one JSON line
// so the supervisor can show it in the task.
package egress

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Allowlist matches host names. "example.com" allows exactly that host;
// ".example.com" (or "*.example.com") allows its subdomains and itself.
type Allowlist struct {
	exact  map[string]bool
	suffix []string
}

// NewAllowlist parses domain patterns; IP literals and empty entries are
// rejected because an allowlist is about names the operator chose.
func NewAllowlist(patterns []string) (*Allowlist, error) {
	a := &Allowlist{exact: map[string]bool{}}
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		p = strings.TrimPrefix(p, "*")
		if p == "" || p == "." {
			continue
		}
		if strings.ContainsAny(p, "/:@ ") {
			return nil, fmt.Errorf("allowlist entry %q is not a domain", p)
		}
		if strings.HasPrefix(p, ".") {
			a.suffix = append(a.suffix, p)
			a.exact[strings.TrimPrefix(p, ".")] = true
			continue
		}
		a.exact[p] = true
	}
	return a, nil
}

// Allows reports whether host (no port) may be reached.
func (a *Allowlist) Allows(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || a == nil {
		return false
	}
	if a.exact[host] {
		return true
	}
	for _, s := range a.suffix {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// Blocked is the JSON line the proxy prints for a refused request.
type Blocked struct {
	Blocked string    `json:"blocked"` // host:port
	Method  string    `json:"method"`
	Reason  string    `json:"reason,omitempty"` // ReasonPinned, or empty: not in the allowlist
	At      time.Time `json:"at"`
}

// ReasonPinned marks a refusal of the model API's host while its key is pinned:
// the pinned path is the only way to the model.
const ReasonPinned = "pinned"

// Proxy is an http.Handler forward proxy.
type Proxy struct {
	Allow   *Allowlist
	Deny    *Allowlist // refused even when allowed (the pinned model API)
	Log     io.Writer  // refusals, one JSON line each
	Dial    func(network, addr string) (net.Conn, error)
	Timeout time.Duration
	mu      sync.Mutex
}

func (p *Proxy) dial(addr string) (net.Conn, error) {
	if p.Dial != nil {
		return p.Dial("tcp", addr)
	}
	d := net.Dialer{Timeout: p.timeout()}
	return d.Dial("tcp", addr)
}

func (p *Proxy) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 30 * time.Second
}

// check refuses a host that is not allowed or is denied, and says whether it did.
func (p *Proxy) check(w http.ResponseWriter, method, host, port string) bool {
	reason := ""
	switch {
	case p.Deny.Allows(host):
		reason = ReasonPinned
	case p.Allow.Allows(host):
		return false
	}
	hostport := net.JoinHostPort(host, port)
	p.mu.Lock()
	if p.Log != nil {
		b, _ := json.Marshal(Blocked{Blocked: hostport, Method: method, Reason: reason, At: time.Now().UTC()})
		_, _ = p.Log.Write(append(b, '\n'))
	}
	p.mu.Unlock()
	msg := " is not in the allowlist"
	if reason == ReasonPinned {
		msg = " is reachable only through the pinned model API"
	}
	http.Error(w, "trakkar egress: "+hostport+msg, http.StatusForbidden)
	return true
}

// ServeHTTP handles CONNECT tunnels and absolute-form plain HTTP requests.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if r.URL.Host == "" || (r.URL.Scheme != "http") {
		http.Error(w, "trakkar egress: only proxy requests are served", http.StatusBadRequest)
		return
	}
	host, port := splitHostPort(r.URL.Host, "80")
	if p.check(w, r.Method, host, port) {
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	removeHopHeaders(out.Header)
	tr := &http.Transport{
		// Never chain to another proxy from the environment.
		Proxy: nil,
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			return p.dial(addr)
		},
		ResponseHeaderTimeout: p.timeout(),
	}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(out)
	if err != nil {
		http.Error(w, "trakkar egress: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	host, port := splitHostPort(r.Host, "443")
	if p.check(w, r.Method, host, port) {
		return
	}
	upstream, err := p.dial(net.JoinHostPort(host, port))
	if err != nil {
		http.Error(w, "trakkar egress: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "trakkar egress: tunnel not supported", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	client, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	// Bytes the client sent right after CONNECT may already be buffered.
	if n := buf.Reader.Buffered(); n > 0 {
		b, _ := buf.Reader.Peek(n)
		_, _ = upstream.Write(b)
	}
	go func() {
		_, _ = io.Copy(upstream, client)
		closeWrite(upstream)
	}()
	_, _ = io.Copy(client, upstream)
	client.Close()
	upstream.Close()
}

// closeWrite passes the client's end of stream on, so half-closed protocols work.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

func splitHostPort(hostport, defPort string) (string, string) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.Trim(hostport, "[]"), defPort
	}
	return h, p
}

var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, k := range hopHeaders {
		h.Del(k)
	}
}
