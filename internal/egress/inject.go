package egress

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// Injector is a reverse proxy to one model API that pins the credential: the
// agent's container holds only a placeholder, and every request leaves with
// the real key in its header, whatever credential the agent put there. So
// injected code cannot use the allowlisted API with an account of its own, and
// the real key never enters the container.
type Injector struct {
	upstream *url.URL
	header   string
	value    string
	rp       *httputil.ReverseProxy
}

// credentialHeaders are removed from every request before the pinned one is set.
var credentialHeaders = []string{"Authorization", "X-Api-Key", "Proxy-Authorization", "Cookie"}

// NewInjector forwards to upstream (scheme and host only) with header: value.
func NewInjector(upstream, header, value string) (*Injector, error) {
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("inject upstream %q is not an http(s) URL", upstream)
	}
	if header == "" || value == "" {
		return nil, fmt.Errorf("inject needs a header and a value")
	}
	in := &Injector{upstream: u, header: header, value: value}
	in.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = u.Host
			for _, h := range credentialHeaders {
				pr.Out.Header.Del(h)
			}
			pr.Out.Header.Set(header, value)
		},
		Transport: &http.Transport{Proxy: nil},
	}
	return in, nil
}

func (in *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) { in.rp.ServeHTTP(w, r) }
