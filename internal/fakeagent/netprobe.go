package fakeagent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// netprobe tries each `fake:probe=<kind>:<target>` from inside the container
// and says what happened, one message per probe, so tests can check the
// network policy from the agent's side:
//
//	fake:probe=url:<http url>   GET through the proxy from the environment
//	fake:probe=tcp:<host:port>  a raw TCP connection, no proxy
//	fake:probe=gateway:<port>   raw TCP to the default gateway in /proc/net/route
//	fake:probe=connect:<host:port>  a CONNECT request to the proxy from the environment
//	fake:probe=model:<path>     GET $ANTHROPIC_BASE_URL<path> with the key the agent holds
//	fake:probe=model-as:<key> <path>  the same with another key
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
		case "gateway":
			out = probeGateway(target)
		case "connect":
			out = probeConnect(target, r.env.Environ)
		case "model":
			out = probeModel(envValue(r.env.Environ, "ANTHROPIC_API_KEY"), target, r.env.Environ)
		case "model-as":
			key, path, _ := strings.Cut(target, " ")
			out = probeModel(key, path, r.env.Environ)
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

func envValue(environ []string, name string) string {
	v := ""
	for _, kv := range environ {
		if rest, ok := strings.CutPrefix(kv, name+"="); ok {
			v = rest
		}
	}
	return v
}

// probeGateway dials the default route's gateway, which a hostile agent finds
// the same way: it is usually the host's own address on the container's bridge.
func probeGateway(port string) string {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "failed: " + err.Error()
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "00000000" {
			continue
		}
		g, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			continue
		}
		// /proc/net/route prints the address in host (little-endian) order.
		ip := net.IPv4(byte(g), byte(g>>8), byte(g>>16), byte(g>>24))
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), port), 3*time.Second)
		if err != nil {
			return "failed: " + err.Error()
		}
		c.Close()
		return "connected to " + ip.String()
	}
	return "failed: no default route"
}

// probeConnect asks the environment's proxy for a tunnel and reports its answer.
func probeConnect(target string, environ []string) string {
	proxy := envValue(environ, "HTTPS_PROXY")
	pu, err := url.Parse(proxy)
	if err != nil || pu.Host == "" {
		return "failed: no proxy in the environment"
	}
	c, err := net.DialTimeout("tcp", pu.Host, 3*time.Second)
	if err != nil {
		return "failed: " + err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "failed: " + err.Error()
	}
	resp.Body.Close()
	return fmt.Sprintf("status %d", resp.StatusCode)
}

// probeModel calls the model API the way the CLI does, key in x-api-key.
func probeModel(key, path string, environ []string) string {
	base := envValue(environ, "ANTHROPIC_BASE_URL")
	if base == "" {
		return "failed: no ANTHROPIC_BASE_URL"
	}
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return "failed: " + err.Error()
	}
	req.Header.Set("x-api-key", key)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return "failed: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return fmt.Sprintf("status %d body %q", resp.StatusCode, strings.TrimSpace(string(body)))
}
