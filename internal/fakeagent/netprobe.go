package fakeagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"
)

// netprobe tries each `fake:probe=<kind>:<target>` from inside the container
// and says what happened, one message per probe, so tests can check the
// network policy from the agent's side:
//
//	fake:probe=url:<http url>   GET through the proxy from the environment
//	fake:probe=tcp:<host:port>  a raw TCP connection, no proxy
//	fake:probe=dns:<name>       a name lookup
//	fake:probe=exec:<command>   a shell command (sh -c), its exit status and output
func (r *run) netprobe() (map[string]any, int, error) {
	var lines []string
	for _, p := range r.d.probes {
		kind, target, _ := strings.Cut(p, ":")
		var out string
		switch kind {
		case "url":
			out = probeURL(target, r.env.Environ)
		case "tcp":
			c, err := net.DialTimeout("tcp", target, 3*time.Second)
			if err != nil {
				out = "failed: " + err.Error()
			} else {
				c.Close()
				out = "connected"
			}
		case "dns":
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			addrs, err := net.DefaultResolver.LookupHost(ctx, target)
			cancel()
			if err != nil {
				out = "failed: " + err.Error()
			} else {
				out = "resolved " + strings.Join(addrs, ",")
			}
		case "exec":
			cmd := exec.Command("/bin/sh", "-c", target)
			cmd.Env = r.env.Environ
			cmd.Dir = r.env.Dir
			b, err := cmd.CombinedOutput()
			code := 0
			if err != nil {
				code = -1
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
			}
			out = fmt.Sprintf("exit %d output %q", code, strings.TrimSpace(string(b)))
		default:
			out = "unknown probe kind"
		}
		line := fmt.Sprintf("PROBE %s:%s %s", kind, target, out)
		lines = append(lines, line)
		if err := r.text(r.newMessage(), line); err != nil {
			return nil, 0, err
		}
	}
	text := strings.Join(lines, "\n")
	return r.result(false, "success", map[string]any{"result": text}), 0, nil
}

func probeURL(target string, environ []string) string {
	proxy, noProxy := "", ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "HTTP_PROXY="); ok {
			proxy = v
		}
		if v, ok := strings.CutPrefix(kv, "NO_PROXY="); ok {
			noProxy = v
		}
	}
	if u, err := url.Parse(target); err == nil {
		for _, h := range strings.Split(noProxy, ",") {
			if h != "" && u.Hostname() == h {
				proxy = ""
			}
		}
	}
	tr := &http.Transport{}
	if proxy != "" {
		pu, err := url.Parse(proxy)
		if err != nil {
			return "failed: bad proxy " + proxy
		}
		tr.Proxy = http.ProxyURL(pu)
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get(target)
	if err != nil {
		return "failed: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return fmt.Sprintf("status %d body %q", resp.StatusCode, strings.TrimSpace(string(body)))
}
