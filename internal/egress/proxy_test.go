package egress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestAllowlist(t *testing.T) {
	a, err := NewAllowlist([]string{"api.anthropic.com", ".example.org", "*.cursor.sh", ""})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"api.anthropic.com":      true,
		"API.Anthropic.com.":     true,
		"evil.api.anthropic.com": false,
		"anthropic.com":          false,
		"example.org":            true,
		"a.b.example.org":        true,
		"badexample.org":         false,
		"api2.cursor.sh":         true,
		"127.0.0.1":              false,
		"":                       false,
	} {
		if got := a.Allows(host); got != want {
			t.Errorf("Allows(%q) = %v, want %v", host, got, want)
		}
	}
	for _, bad := range []string{"http://x.com", "x.com:443", "user@x.com"} {
		if _, err := NewAllowlist([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// proxyFor serves a proxy that resolves the names "allowed.test" and
// "blocked.test" to the given upstream, so no real DNS is involved.
func proxyFor(t *testing.T, upstream string, allow ...string) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	al, err := NewAllowlist(allow)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	p := &Proxy{Allow: al, Log: &log, Dial: func(network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		u, _ := url.Parse(upstream)
		_, uport, _ := net.SplitHostPort(u.Host)
		if port != uport {
			return nil, fmt.Errorf("unexpected port %s", port)
		}
		return net.Dial(network, u.Host)
	}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv, &log
}

func TestPlainHTTPAllowedAndBlocked(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != "" {
			t.Error("hop-by-hop header forwarded")
		}
		fmt.Fprint(w, "hello from "+r.Host)
	}))
	defer up.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "http://"))
	proxy, log := proxyFor(t, up.URL, "allowed.test")
	pu, _ := url.Parse(proxy.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}

	resp, err := client.Get("http://allowed.test:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "hello from allowed.test") {
		t.Fatalf("allowed: %d %q", resp.StatusCode, body)
	}
	resp, err = client.Get("http://blocked.test:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("blocked host answered %d", resp.StatusCode)
	}
	var b Blocked
	if err := json.Unmarshal(bytes.TrimSpace(log.Bytes()), &b); err != nil || b.Blocked != "blocked.test:"+port || b.Method != "GET" {
		t.Fatalf("refusal log %q (%v)", log.String(), err)
	}
}

func TestConnectTunnel(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "tls ok") }))
	defer up.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "https://"))
	// httptest's certificate is for example.com and its subdomains.
	proxy, log := proxyFor(t, up.URL, ".example.com")
	pu, _ := url.Parse(proxy.URL)
	tr := up.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(pu)
	client := &http.Client{Transport: tr}
	resp, err := client.Get("https://api.example.com:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "tls ok" {
		t.Fatalf("tunnel body %q", body)
	}
	// A refused CONNECT is answered 403 and logged.
	conn, err := net.Dial("tcp", pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n")
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != http.StatusForbidden || !strings.Contains(log.String(), `"blocked":"evil.example:443"`) {
		t.Fatalf("CONNECT evil: %d, log %q", r.StatusCode, log.String())
	}
}

func TestOriginFormRequestRefused(t *testing.T) {
	proxy, _ := proxyFor(t, "http://127.0.0.1:1", "allowed.test")
	resp, err := http.Get(proxy.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("direct request answered %d", resp.StatusCode)
	}
}

// A denied host is refused even when the allowlist names it: with the model key
// pinned, the agent must not reach the model API with a key of its own.
func TestDeniedHostRefusedThoughAllowed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "upstream") }))
	defer up.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "http://"))
	proxy, log := proxyFor(t, up.URL, "allowed.test", "model.test")
	proxy.Config.Handler.(*Proxy).Deny, _ = NewAllowlist([]string{"model.test"})
	pu, _ := url.Parse(proxy.URL)
	for _, tc := range []struct {
		name, host string
		want       int
	}{
		{"allowed", "allowed.test", http.StatusOK},
		{"denied", "model.test", http.StatusForbidden},
		{"denied, other case and dot", "MODEL.test.", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", pu.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n", tc.host, port, tc.host, port)
			r, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode != tc.want {
				t.Fatalf("CONNECT %s answered %d, want %d", tc.host, r.StatusCode, tc.want)
			}
			client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
			resp, err := client.Get("http://" + tc.host + ":" + port + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("GET %s answered %d, want %d", tc.host, resp.StatusCode, tc.want)
			}
		})
	}
	if !strings.Contains(log.String(), `"reason":"pinned"`) {
		t.Fatalf("refusal not logged as pinned: %q", log.String())
	}
}
