package egress

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Variables that carry credentials to the proxy: never argv, which others can read.
const (
	// InjectValueEnv holds the real model key the injector pins.
	InjectValueEnv = "TRAKKAR_INJECT_VALUE"
	// InjectSecretEnv holds the task's secret that requests must show.
	InjectSecretEnv = "TRAKKAR_INJECT_SECRET"
)

// Main runs the proxy from command-line arguments (`egress-proxy --listen
// unix:/trakkar/egress/proxy.sock --allow a.com,.b.com`) until ctx ends. It is
// the entrypoint of the proxy container, which uses the worker image.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("egress-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listenAt := fs.String("listen", ":3128", "address to listen on; unix:/path for a unix socket")
	allow := fs.String("allow", "", "comma-separated domains to allow (.example.com allows subdomains)")
	deny := fs.String("deny", "", "comma-separated domains to refuse even when allowed")
	injectListen := fs.String("inject-listen", "", "also serve the model API here with the credential pinned")
	injectUpstream := fs.String("inject-upstream", "", "the model API base URL, e.g. https://api.anthropic.com")
	injectHeader := fs.String("inject-header", "x-api-key", "header that carries the credential")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	al, err := NewAllowlist(strings.Split(*allow, ","))
	if err != nil {
		fmt.Fprintln(stderr, "egress-proxy:", err)
		return 2
	}
	dl, err := NewAllowlist(strings.Split(*deny, ","))
	if err != nil {
		fmt.Fprintln(stderr, "egress-proxy:", err)
		return 2
	}
	if *injectListen != "" {
		in, err := NewInjector(*injectUpstream, *injectHeader, os.Getenv(InjectValueEnv), os.Getenv(InjectSecretEnv))
		if err != nil {
			fmt.Fprintln(stderr, "egress-proxy:", err)
			return 2
		}
		iln, err := listen(*injectListen)
		if err != nil {
			fmt.Fprintln(stderr, "egress-proxy:", err)
			return 1
		}
		isrv := &http.Server{Handler: in, ReadHeaderTimeout: 30 * time.Second}
		go func() { _ = isrv.Serve(iln) }()
		go func() {
			<-ctx.Done()
			_ = isrv.Close()
		}()
		fmt.Fprintf(stderr, "egress-proxy: model API with a pinned credential on %s → %s\n", *injectListen, *injectUpstream)
	}
	ln, err := listen(*listenAt)
	if err != nil {
		fmt.Fprintln(stderr, "egress-proxy:", err)
		return 1
	}
	srv := &http.Server{Handler: &Proxy{Allow: al, Deny: dl, Log: stdout}, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stderr, "egress-proxy: listening on %s, allowing %s\n", *listenAt, *allow)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "egress-proxy:", err)
		return 1
	}
	return 0
}

// listen opens a TCP address, or with a unix: prefix a unix socket that only
// its owner may use (the task's containers run as one user).
func listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("socket path %q is not absolute", path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict socket %s: %w", path, err)
	}
	return ln, nil
}
