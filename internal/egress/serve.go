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
	"strings"
	"time"
)

// InjectValueEnv names the variable holding the pinned credential.
const InjectValueEnv = "TRAKKAR_INJECT_VALUE"

// Main runs the proxy from command-line arguments (`egress-proxy --listen
// :3128 --allow a.com,.b.com`) until ctx ends. It is the entrypoint of the
// proxy container, which uses the worker image.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("egress-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":3128", "address to listen on")
	allow := fs.String("allow", "", "comma-separated domains to allow (.example.com allows subdomains)")
	injectListen := fs.String("inject-listen", "", "also serve the model API here with the credential pinned")
	injectUpstream := fs.String("inject-upstream", "", "the model API base URL, e.g. https://api.anthropic.com")
	injectHeader := fs.String("inject-header", "x-api-key", "header that carries the credential")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *injectListen != "" {
		// The credential comes from the environment, never from argv.
		in, err := NewInjector(*injectUpstream, *injectHeader, os.Getenv(InjectValueEnv))
		if err != nil {
			fmt.Fprintln(stderr, "egress-proxy:", err)
			return 2
		}
		iln, err := net.Listen("tcp", *injectListen)
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
		fmt.Fprintf(stderr, "egress-proxy: model API with a pinned credential on %s → %s\n", iln.Addr(), *injectUpstream)
	}
	al, err := NewAllowlist(strings.Split(*allow, ","))
	if err != nil {
		fmt.Fprintln(stderr, "egress-proxy:", err)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, "egress-proxy:", err)
		return 1
	}
	srv := &http.Server{Handler: &Proxy{Allow: al, Log: stdout}, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stderr, "egress-proxy: listening on %s, allowing %s\n", ln.Addr(), *allow)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "egress-proxy:", err)
		return 1
	}
	return 0
}
