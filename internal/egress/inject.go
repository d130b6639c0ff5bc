package egress

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

// Injector is a reverse proxy to one model API that pins the credential: the
// agent's container holds only a per-task secret, and every request that shows
// it leaves with the real key in its header instead. So injected code cannot
// use the allowlisted API with an account of its own, the real key never
// enters the container, and nobody without the task's secret can spend it.
type Injector struct {
	upstream *url.URL
	header   string
	value    string
	secret   [sha256.Size]byte
	rp       *httputil.ReverseProxy
}

// credentialHeaders are removed from every request before the pinned one is set.
var credentialHeaders = []string{"Authorization", "X-Api-Key", "Proxy-Authorization", "Cookie"}

// NewInjector forwards to upstream (scheme and host only) with header: value,
// for requests that carry secret as their x-api-key or bearer token.
func NewInjector(upstream, header, value, secret string) (*Injector, error) {
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("inject upstream %q is not an http(s) URL", upstream)
	}
	if header == "" || value == "" {
		return nil, fmt.Errorf("inject needs a header and a value")
	}
	if secret == "" {
		return nil, fmt.Errorf("inject needs the task's secret")
	}
	in := &Injector{upstream: u, header: header, value: value, secret: sha256.Sum256([]byte(secret))}
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

// authorized reports whether r shows the task's secret. Both sides are hashed
// first, so the comparison takes the same time whatever the length.
func (in *Injector) authorized(r *http.Request) bool {
	got := r.Header.Get("X-Api-Key")
	if got == "" {
		got, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if got == "" {
		return false
	}
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], in.secret[:]) == 1
}

func (in *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !in.authorized(r) {
		http.Error(w, "trakkar egress: the pinned model API needs this task's key", http.StatusUnauthorized)
		return
	}
	in.rp.ServeHTTP(w, r)
}
